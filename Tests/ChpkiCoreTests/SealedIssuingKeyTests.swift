import Foundation
import GRDB
import Testing
@testable import ChpkiCore
@testable import ChpkiCA
@testable import ChpkiOpenSSL

/// The issuing intermediate's key is also stored sealed under the leaf-key data key, so a run that
/// opens both (every `issue`) pays one scrypt. The copy must open only with the operations
/// passphrase, belong to its certificate, never exist for a root, and never be needed: a CA made
/// before it, or a copy that does not open, signs through the PKCS#8 key as before.
@Suite("Sealed issuing-key copy")
struct SealedIssuingKeyTests {
    typealias S = CATestSupport

    /// The intermediate's sealed copy as stored, opened with the vault of `session`.
    static func openedCopy(_ session: CASession) throws -> PrivateKey? {
        guard let box = try session.database.authoritySealedKey(serial: session.issuing.serial),
              let vault = try session.unlockVault() else { return nil }
        return AuthorityKey.openSealedCopy(box, certificate: session.issuingCertificate, vault: vault)
    }

    static func setSealedKey(_ directory: CADirectory, kind: String, to value: Data?) throws {
        let queue = try DatabaseQueue(path: directory.file(CADatabase.fileName))
        try queue.write { db in
            try db.execute(sql: "UPDATE certificates SET key_sealed = ? WHERE kind = ?", arguments: [value, kind])
        }
        try queue.close()
    }

    @Test("a new CA seals its intermediate's key (not its root's) and the copy is the intermediate's own key")
    func newCASealsTheIntermediate() throws {
        let directory = try S.newCA(operations: S.operations)
        try S.withSession(directory, .read, operations: S.operations) { session throws in
            #expect(session.issuing.kind == .intermediate)
            #expect(try session.database.authoritySealedKey(serial: session.root.serial) == nil)
            let copy = try #require(try Self.openedCopy(session))
            #expect(copy.matches(session.issuingCertificate))
            #expect(try copy.publicKeyDER() == session.unlockSigner().key.publicKeyDER())
        }
    }

    @Test("a --no-passphrase CA has no copy, and a root that signs leaves has none either")
    func noCopyWithoutAVault() throws {
        let clear = try S.newCA()
        try S.withSession(clear, .read) { session throws in
            #expect(try session.database.authoritySealedKey(serial: session.issuing.serial) == nil)
        }
        let rootOnly = try S.newCA(intermediate: false, operations: S.operations)
        try S.withSession(rootOnly, .read, operations: S.operations) { session throws in
            #expect(try session.database.authoritySealedKey(serial: session.issuing.serial) == nil)
            try session.unlockOperations()
        }
    }

    @Test("the copy is bound to its certificate's serial: moved to another row, it does not open")
    func copyBoundToSerial() throws {
        let directory = try S.newCA(operations: S.operations)
        try S.withSession(directory, .read, operations: S.operations) { session throws in
            let box = try #require(try session.database.authoritySealedKey(serial: session.issuing.serial))
            let vault = try #require(try session.unlockVault())
            #expect(vault.openIssuingKey(box, serial: session.issuing.serial) != nil)
            #expect(vault.openIssuingKey(box, serial: session.root.serial) == nil)
            // nor as a leaf key of the same serial: the two purposes have their own associated data
            #expect(throws: ChpkiError.self) { _ = try vault.open(box, serial: session.issuing.serial) }
        }
    }

    @Test("a CA made before the copies, or one whose copy was altered, still issues through the PKCS#8 key",
          arguments: [nil, Data(repeating: 0x5A, count: 80)] as [Data?])
    func fallsBackToThePKCS8Key(copy: Data?) throws {
        let directory = try S.newCA(operations: S.operations)
        try Self.setSealedKey(directory, kind: "intermediate", to: copy)
        let issued = try S.withSession(directory, operations: S.operations) { session throws in
            try session.startUnlockingOperations()
            try session.unlockOperations()
            return try session.issue(try S.plan(session, try S.inventory()).work)
        }
        #expect(!issued.isEmpty)
        try S.withSession(directory, .read, operations: S.operations) { session throws in
            #expect(try session.validLeavesWithKeys().count == issued.count)
        }
    }

    @Test("a wrong passphrase is refused as before, naming intermediate.key, whether or not the keys were started early",
          arguments: [true, false])
    func wrongPassphrase(startEarly: Bool) throws {
        let directory = try S.newCA(operations: S.operations)
        let before = S.read(directory.file(CADatabase.fileName))
        try S.withSession(directory, operations: "a wrong passphrase") { session throws in
            if startEarly { try session.startUnlockingOperations() }
            let refusal = CATestSupport.refusal { try session.unlockOperations() }
            #expect(refusal?.code == .passphraseWrong)
            #expect(refusal?.file?.hasSuffix(CADirectory.intermediateKey) == true)
        }
        #expect(S.read(directory.file(CADatabase.fileName)) == before)
    }

    @Test("passphrase change --which operations: the copy opens under the new passphrase, and the old one opens nothing")
    func passphraseChange() throws {
        let directory = try S.newCA(operations: S.operations)
        try S.withSession(directory, operations: S.operations) { session throws in
            _ = try session.changePassphrase(.operations) { try Passphrase(bytes: Array("a new operations passphrase".utf8), source: "test") }
        }
        try S.withSession(directory, .read, operations: "a new operations passphrase") { session throws in
            try session.startUnlockingOperations()
            try session.unlockOperations()
            #expect(try Self.openedCopy(session)?.matches(session.issuingCertificate) == true)
        }
        try S.withSession(directory, .read, operations: S.operations) { session throws in
            #expect(CATestSupport.refusal { try session.unlockOperations() }?.code == .passphraseWrong)
        }
    }

    @Test("an intermediate made by growth or by rotate-ca gets its copy too")
    func growthAndRotationSeal() throws {
        let inventory = try S.inventory()
        let directory = try S.newCA(operations: S.operations, constraints: NameConstraintsPolicy.constraints(for: inventory))
        let wider = try S.inventory(S.inventoryYAML.replacingOccurrences(of: "node-3.example.com", with: "node-9.example.com"))
        try S.withSession(directory, operations: S.operations) { session throws in
            let work = try S.plan(session, wider).work
            guard case let .newIntermediate(constraints, _) = try IssuingAuthorities.decide(
                session, profiles: NamingRules.profiles(for: wider), inventory: wider, live: [], source: wider.path) else {
                Issue.record("the wider inventory did not ask for a new intermediate")
                return
            }
            let grown = try session.issue(work, growingWith: constraints)
            #expect(session.issuing.serial == grown.intermediate.serial)
        }
        try S.withSession(directory, .read, operations: S.operations) { session throws in
            #expect(try Self.openedCopy(session)?.matches(session.issuingCertificate) == true)
        }
        try S.withSession(directory, operations: S.operations) { session throws in
            let started = try CARotation.start(session, inventory: wider)
            #expect(started.intermediate != nil)
        }
        try S.withSession(directory, .read, operations: S.operations) { session throws in
            #expect(try Self.openedCopy(session)?.matches(session.issuingCertificate) == true)
        }
    }
}
