import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// The key wrapping of SPEC §6 "Two secrets": which secret wraps which key, a new CA's root under
/// the root passphrase and its issuing keys under the operations one, and `passphrase change`
/// re-wrapping either while every key keeps opening.
@Suite("Two secrets")
struct TwoSecretsTests {
    static func passphrase(_ text: String) -> Passphrase { try! Passphrase(bytes: Array(text.utf8), source: "test") }
    static let operations = "operations passphrase"
    static let root = "root passphrase apart"

    /// Runs `body` on the CA opened with these passphrases; the session (and its lock) ends with it.
    static func withSession<T>(_ directory: CADirectory, operations: String = operations, root: String? = root,
                               _ body: (CASession) throws -> T) throws -> T {
        var environment = [PassphraseSource.environmentVariable: operations]
        if let root { environment[PassphraseSource.rootEnvironmentVariable] = root }
        let session = try CASession.open(directory, access: .change, passphrase: PassphraseSource(file: nil, environment: environment),
                                         rootPassphrase: .root(file: nil, environment: environment), now: Date())
        return try withExtendedLifetime(session) { try body(session) }
    }

    static func newCA(root: String?) throws -> CADirectory {
        let path = NSTemporaryDirectory() + "chpki-two-secrets-\(UUID().uuidString)"
        let directory = CADirectory(path: path)
        _ = try CAInitializer.create(.init(directory: directory, subject: DistinguishedName([.init("CN", "Two Secrets Root")]),
                                           keyType: .ecP256, validity: Period(amount: 1, unit: .years), nameConstraints: nil,
                                           intermediate: true, passphrase: passphrase(operations), rootPassphrase: root.map(passphrase),
                                           now: Date()))
        return directory
    }

    /// Whether `file` of the CA directory opens with `text`.
    static func opens(_ directory: CADirectory, _ file: String, with text: String) -> Bool {
        guard let pem = FileManager.default.contents(atPath: directory.file(file)) else { return false }
        return (try? PrivateKey(pem: pem, passphrase: passphrase(text))) != nil
    }

    @Test("the root passphrase wraps root keys only when the root is apart")
    func secretOfEachKey() {
        #expect(AuthorityKey.secret(of: .root, rootApart: true) == .root)
        #expect(AuthorityKey.secret(of: .root, rootApart: false) == .operations)
        #expect(AuthorityKey.secret(of: .intermediate, rootApart: true) == .operations)
        #expect(AuthorityKey.secret(of: .intermediate, rootApart: false) == .operations)
    }

    @Test("re-wrapping the data key keeps every sealed key opening, under the new passphrase only")
    func rewrapDataKey() throws {
        let (vault, _) = try LeafKeyVault.create(passphrase: Self.passphrase("old passphrase"))
        let serial = try SerialNumber.random()
        let box = try vault.seal(SecretBytes(Array("a leaf key".utf8)), serial: serial)
        let wrap = try vault.wrap(under: Self.passphrase("new passphrase"))
        let reopened = try LeafKeyVault.open(wrap, passphrase: Self.passphrase("new passphrase"), source: "test")
        #expect(try reopened.open(box, serial: serial) == SecretBytes(Array("a leaf key".utf8)))
        #expect(throws: ChpkiError.self) { try LeafKeyVault.open(wrap, passphrase: Self.passphrase("old passphrase"), source: "test") }
    }

    @Test("a new CA wraps root.key under the root passphrase, the intermediate under the operations one")
    func newCAKeepsTheRootApart() throws {
        let directory = try Self.newCA(root: Self.root)
        #expect(Self.opens(directory, CADirectory.rootKey, with: Self.root))
        #expect(!Self.opens(directory, CADirectory.rootKey, with: Self.operations))
        #expect(Self.opens(directory, CADirectory.intermediateKey, with: Self.operations))
        #expect(!Self.opens(directory, CADirectory.intermediateKey, with: Self.root))
        // the operations passphrase alone unlocks what the weekly renewal needs
        try Self.withSession(directory, root: nil) { session in
            #expect(try session.rootKeyApart())
            try session.unlockOperations()
        }
    }

    @Test("without a root passphrase the CA has one secret, and passphrase change --which root splits it")
    func oneSecretCAIsSplit() throws {
        let directory = try Self.newCA(root: nil)
        #expect(Self.opens(directory, CADirectory.rootKey, with: Self.operations))
        let change = try Self.withSession(directory, root: nil) { session in
            #expect(try !session.rootKeyApart())
            _ = try session.unlockRootSigner()  // opens with the one passphrase
            return try session.changePassphrase(.root) { Self.passphrase(Self.root) }
        }
        #expect(change.split && change.rootKeyApart && change.rewrapped.count == 1)
        #expect(Self.opens(directory, CADirectory.rootKey, with: Self.root))
        #expect(!Self.opens(directory, CADirectory.rootKey, with: Self.operations))
        #expect(Self.opens(directory, CADirectory.intermediateKey, with: Self.operations))
    }

    @Test("passphrase change --which operations re-wraps the intermediate and the data key, not the root")
    func operationsChange() throws {
        let directory = try Self.newCA(root: Self.root)
        let rootBefore = FileManager.default.contents(atPath: directory.file(CADirectory.rootKey))
        let change = try Self.withSession(directory, root: nil) { session in
            try session.changePassphrase(.operations) { Self.passphrase("new operations passphrase") }
        }
        #expect(change.leafKeyWrapChanged && !change.split && change.rewrapped.count == 1)
        #expect(FileManager.default.contents(atPath: directory.file(CADirectory.rootKey)) == rootBefore)
        #expect(Self.opens(directory, CADirectory.intermediateKey, with: "new operations passphrase"))
        try Self.withSession(directory, operations: "new operations passphrase", root: nil) { try $0.unlockOperations() }
        try Self.withSession(directory, root: nil) { stale in
            #expect(throws: ChpkiError.self) { try stale.unlockOperations() }
        }
    }
}
