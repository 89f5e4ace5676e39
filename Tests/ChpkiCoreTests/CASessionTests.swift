import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// CASession: the lock it takes before it reads anything (against another process holding it),
/// the recovery it runs on open for every way a run can be interrupted (a commit whose files were
/// not all written, leftovers of killed writes), and the changes it offers (issue, revoke),
/// checked in ca.db, in the files and with the openssl CLI.
@Suite("CA session")
struct CASessionTests {
    typealias S = CATestSupport

    /// A CA with the inventory's leaves issued, keys in clear (fast).
    static func issuedCA(intermediate: Bool = true) throws -> CADirectory {
        let directory = try S.newCA(intermediate: intermediate)
        try S.issue(directory, try S.inventory())
        return directory
    }

    /// Name -> content of every file of the CA directory (retired/ included), for before/after comparisons.
    static func snapshot(_ directory: CADirectory) -> [String: Data] {
        var result: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: directory.path)
        while let name = enumerator?.nextObject() as? String {
            if let data = RegularFile.contents(directory.file(name), limit: 1 << 26) { result[name] = data }
        }
        return result
    }

    /// What the files of `directory` should be: what a fresh open writes, compared without ca.db's own files.
    static func derivedFiles(_ directory: CADirectory) -> [String: Data] {
        snapshot(directory).filter { !$0.key.hasPrefix(CADatabase.fileName) }
    }

    static func othersCanLock(_ directory: CADirectory, shared: Bool) throws -> Bool {
        try S.tool(["flock", "-n", shared ? "-s" : "-x", directory.path, "true"]).status == 0
    }

    // MARK: - the lock

    @Test("a change session holds the directory exclusively until it ends")
    func changeHoldsExclusive() throws {
        let directory = try S.newCA()
        do {
            let session = try S.open(directory, .change)
            #expect(try !Self.othersCanLock(directory, shared: true))
            withExtendedLifetime(session) {}
        }
        #expect(try Self.othersCanLock(directory, shared: false))
    }

    @Test("a read session holds it shared: other readers in, writers out")
    func readHoldsShared() throws {
        let directory = try S.newCA()
        let session = try S.open(directory, .read)
        #expect(try Self.othersCanLock(directory, shared: true))
        #expect(try !Self.othersCanLock(directory, shared: false))
        withExtendedLifetime(session) {}
    }

    @Test("opening to change waits while another process holds the lock, says so once, then opens")
    func changeWaitsForAnotherProcess() throws {
        let directory = try S.newCA()
        let holder = try LockHolder(directory.path, shared: true)
        let waited = Flag()
        let open = Background { try S.open(directory, .change, waiting: { waited.set() }) }
        #expect(open.wait(0.5) == nil, "opened to change while another process reads the CA")
        #expect(waited.times == 1)
        holder.release()
        guard case let .success(session)? = open.wait(30) else {
            Issue.record("never opened after the other process ended")
            return
        }
        #expect(waited.times == 1)
        #expect(try session.certificates().count == 2)
    }

    @Test("opening to read waits for another process's change, not for another reader")
    func readWaitsOnlyForWriters() throws {
        let directory = try S.newCA()
        do {
            let reader = try LockHolder(directory.path, shared: true)
            let waited = Flag()
            let session = try S.open(directory, .read, waiting: { waited.set() })
            #expect(!waited.isSet, "a clean CA opened to read must not wait for another reader")
            withExtendedLifetime(session) {}
            reader.release()
        }
        let writer = try LockHolder(directory.path, shared: false)
        let waited = Flag()
        let open = Background { try S.open(directory, .read, waiting: { waited.set() }) }
        #expect(open.wait(0.5) == nil, "read the CA while another process changes it")
        #expect(waited.isSet)
        writer.release()
        guard case .success? = open.wait(30) else {
            Issue.record("the reader never opened")
            return
        }
    }

    @Test("a holder killed mid-change leaves no lock: the next session opens")
    func killedHolder() throws {
        let directory = try S.newCA()
        let holder = try LockHolder(directory.path, shared: false)
        holder.kill()
        let open = Background { try S.open(directory, .change) }
        guard case .success? = open.wait(30) else {
            Issue.record("the lock of a killed process was kept")
            return
        }
    }

    @Test("two sessions to change in one process are serialised too")
    func twoChangeSessions() throws {
        let directory = try S.newCA()
        var first: CASession? = try S.open(directory, .change)
        let second = Background { try S.open(directory, .change) }
        #expect(second.wait(0.5) == nil)
        withExtendedLifetime(first) {}
        first = nil
        guard case .success? = second.wait(30) else {
            Issue.record("the second session never opened")
            return
        }
    }

    @Test("a read session refuses every change (internal misuse is an error, not a silent write)")
    func readSessionRefusesChanges() throws {
        let directory = try S.newCA()
        let before = Self.snapshot(directory)
        try S.withSession(directory, .read) { session throws in
            let plan = try S.plan(session, try S.inventory())
            #expect(CATestSupport.refusal { _ = try session.issue(plan.work) }?.kind == .refused)
            #expect(CATestSupport.refusal { _ = try session.revokeAndPublishCRL([]) }?.kind == .refused)
        }
        #expect(Self.snapshot(directory) == before)
    }

    // MARK: - no CA

    @Test("a missing directory is 'no CA here', naming it and --ca-dir, and creates nothing")
    func missingDirectory() throws {
        let path = try S.temporaryDirectory("session") + "/absent"
        let error = CATestSupport.refusal { _ = try S.open(CADirectory(path: path)) }
        #expect(error?.kind == .refused)
        #expect(error?.file == path)
        #expect(error?.field == "--ca-dir")
        #expect(!S.exists(path))
    }

    @Test("a directory without ca.db is 'no CA here', and is left as it was")
    func emptyDirectory() throws {
        let path = try S.temporaryDirectory("session")
        try S.write("operator's file", to: path + "/notes.txt")
        let error = CATestSupport.refusal { _ = try S.open(CADirectory(path: path), .read) }
        #expect(error?.field == "--ca-dir")
        #expect(S.names(in: path) == ["notes.txt"])
    }

    @Test("a relative directory is named absolute in the refusal")
    func relativeNamedAbsolute() throws {
        let error = CATestSupport.refusal { _ = try S.open(CADirectory(path: "surely-not-a-ca-\(UUID().uuidString)")) }
        #expect(error?.file?.hasPrefix("/") == true)
    }

    // MARK: - reading the CA

    @Test("a CA with an intermediate: the root is current, the intermediate issues")
    func rolesWithIntermediate() throws {
        let directory = try S.newCA()
        try S.withSession(directory, .read) { session throws in
            #expect(session.root.isSelfSigned)
            #expect(session.issuing.kind == .intermediate)
            #expect(session.issuingCertificate.isSigned(by: session.root))
            #expect(session.previousRoot == nil)
            #expect(session.trustedRoots.count == 1)
            #expect(session.intermediates.keys.sorted() == [session.issuing.serial.hex])
            #expect(session.currentAuthoritySerials == Set(session.authorities.map(\.serial)))
            #expect(try !session.keysEncrypted())
        }
    }

    @Test("a root-only CA: the root issues")
    func rolesRootOnly() throws {
        let directory = try S.newCA(intermediate: false)
        try S.withSession(directory, .read) { session throws in
            #expect(session.issuing.kind == .root)
            #expect(session.issuing.serial == session.root.serial)
            #expect(session.intermediates.isEmpty)
        }
    }

    @Test("name constraints on the path come from the intermediate (or the root when it issues)")
    func issuingNameConstraints() throws {
        let constraints = NameConstraints(permitted: [.dns("example.com"), .ipNetwork(address: [10, 0, 0, 0], mask: [255, 0, 0, 0])], excluded: [])
        let withIntermediate = try S.newCA(constraints: constraints)
        try S.withSession(withIntermediate, .read) { session throws in
            #expect(session.root.nameConstraints == nil)
            #expect(session.issuingNameConstraints == [constraints])
        }
        let rootOnly = try S.newCA(intermediate: false, constraints: constraints)
        try S.withSession(rootOnly, .read) { session throws in
            #expect(session.issuingNameConstraints == [constraints])
        }
        try S.withSession(try S.newCA(), .read) { session throws in
            #expect(session.issuingNameConstraints.isEmpty)
        }
    }

    // MARK: - issuing

    @Test("issue signs every item, records them, and writes index.txt; openssl verifies each leaf")
    func issueRecordsAndPublishes() throws {
        let directory = try S.newCA()
        let inventory = try S.inventory()
        let issued = try S.issue(directory, inventory)
        #expect(issued.count == NamingRules.profiles(for: inventory).count)
        #expect(Set(issued.map(\.signed.serial)).count == issued.count)
        let index = String(decoding: S.read(directory.file(OpenSSLIndex.fileName)) ?? Data(), as: UTF8.self)
        for leaf in issued {
            #expect(index.contains(leaf.signed.serial.hex), "index.txt lacks \(leaf.signed.serial.hex)")
        }
        try S.withSession(directory, .read) { session throws in
            #expect(Set(try session.validLeaves().map(\.serial)) == Set(issued.map(\.signed.serial)))
        }
        let work = try S.temporaryDirectory("session-verify")
        for leaf in issued {
            let path = try S.file(leaf.signed.pem, named: "leaf-\(leaf.signed.serial.hex).pem", in: work)
            #expect(try S.opensslVerifies(leaf: path, trusted: directory.file(CADirectory.rootCertificate),
                                          untrusted: directory.file(CADirectory.intermediateCertificate),
                                          crl: directory.file(CADirectory.crl)))
        }
    }

    @Test("an empty batch changes nothing")
    func emptyIssue() throws {
        let directory = try S.newCA()
        let before = Self.snapshot(directory)
        let issued = try S.withSession(directory) { session in try session.issue([]) }
        #expect(issued.isEmpty)
        #expect(Self.snapshot(directory) == before)
    }

    @Test("a second plan after issuing has nothing to do")
    func idempotentPlan() throws {
        let directory = try Self.issuedCA()
        try S.withSession(directory, .read) { session throws in
            #expect(try S.plan(session, try S.inventory()).work.isEmpty)
        }
    }

    @Test("validLeavesWithKeys hands out each leaf's own key (openssl: same public key)")
    func keysMatchCertificates() throws {
        let directory = try Self.issuedCA()
        let work = try S.temporaryDirectory("session-keys")
        try S.withSession(directory, .read) { session throws in
            let leaves = try session.validLeavesWithKeys()
            #expect(leaves.count == NamingRules.profiles(for: try S.inventory()).count)
            for leaf in leaves.prefix(3) {
                let certificate = try S.file(leaf.certificate.certificatePEM, named: "c.pem", in: work)
                let key = try S.file(leaf.privateKeyPEM, named: "k.pem", in: work)
                let fromCertificate = try S.tool(["openssl", "x509", "-in", certificate, "-noout", "-pubkey"])
                let fromKey = try S.tool(["openssl", "pkey", "-in", key, "-pubout"])
                #expect(fromCertificate.status == 0 && fromKey.status == 0)
                #expect(fromCertificate.output == fromKey.output)
                try FileManager.default.removeItem(atPath: certificate)
                try FileManager.default.removeItem(atPath: key)
            }
        }
    }

    @Test("a CA with a passphrase seals leaf keys in ca.db and opens them with the passphrase only")
    func sealedLeafKeys() throws {
        let directory = try S.newCA(operations: S.operations)
        try S.issue(directory, try S.inventory(), operations: S.operations)
        try S.withSession(directory, .read, operations: S.operations) { session throws in
            #expect(try session.keysEncrypted())
            #expect(try session.database.clearLeafKeyCount() == 0)
            #expect(try session.validLeavesWithKeys().count == session.validLeaves().count)
        }
        try S.withSession(directory, .read, operations: "a wrong passphrase") { session throws in
            #expect(CATestSupport.refusal { _ = try session.validLeavesWithKeys() }?.kind == .refused)
            #expect(CATestSupport.refusal { try session.unlockOperations() }?.kind == .refused)
        }
    }

    @Test("a wrong operations passphrase is refused before anything is signed or written")
    func wrongPassphraseChangesNothing() throws {
        let directory = try S.newCA(operations: S.operations)
        let before = Self.snapshot(directory)
        try S.withSession(directory, operations: "a wrong passphrase") { session throws in
            let plan = try S.plan(session, try S.inventory())
            #expect(CATestSupport.refusal { _ = try session.issue(plan.work) }?.kind == .refused)
        }
        #expect(Self.snapshot(directory) == before)
    }

    @Test("the passphrase is read once per session: a changed file is not read again")
    func passphraseAskedOnce() throws {
        let directory = try S.newCA(operations: S.operations)
        let file = try S.file(S.operations + "\n", named: "pass", in: try S.temporaryDirectory("session-pass"))
        let session = try CASession.open(directory, access: .read, passphrase: PassphraseSource(file: file, environment: [:]), now: Date())
        let first = try session.passphrase()
        try S.write("something else entirely\n", to: file)
        #expect(try session.passphrase() == first)
        try session.unlockOperations()
    }

    @Test("a one-passphrase CA opens its root with the operations passphrase; a split one needs the root's")
    func rootPassphrase() throws {
        let one = try S.newCA(operations: S.operations)
        try S.withSession(one, .read, operations: S.operations) { session throws in
            #expect(try !session.rootKeyApart())
            _ = try session.unlockRootSigner()
        }
        let split = try S.newCA(operations: S.operations, root: S.rootSecret)
        try S.withSession(split, .read, operations: S.operations, root: S.rootSecret) { session throws in
            #expect(try session.rootKeyApart())
            _ = try session.unlockRootSigner()
        }
        try S.withSession(split, .read, operations: S.operations, root: S.operations) { session throws in
            #expect(CATestSupport.refusal { _ = try session.unlockRootSigner() }?.kind == .refused)
        }
    }

    @Test("issuing with a clock before the issuing CA's notBefore is refused, nothing changed")
    func clockBeforeNotBefore() throws {
        let now = Date()
        let directory = try S.newCA(now: now)
        let before = Self.snapshot(directory)
        try S.withSession(directory, now: now.addingTimeInterval(-2 * 86_400)) { session throws in
            let plan = try S.plan(session, try S.inventory())
            #expect(CATestSupport.refusal { _ = try session.issue(plan.work) }?.kind == .refused)
        }
        #expect(Self.snapshot(directory).filter { $0.key != OpenSSLIndex.fileName } == before.filter { $0.key != OpenSSLIndex.fileName })
    }

    // MARK: - revoking

    @Test("revoke marks the leaf revoked and publishes a CRL that openssl enforces")
    func revokePublishesCRL() throws {
        let directory = try Self.issuedCA()
        let (revoked, kept) = try S.withSession(directory) { session -> (IssuedCertificate, IssuedCertificate) in
            let leaves = try session.validLeaves()
            _ = try session.revokeAndPublishCRL([leaves[0].serial], reason: .keyCompromise)
            return (leaves[0], leaves[1])
        }
        try S.withSession(directory, .read) { session throws in
            let record = try #require(try session.certificates().first { $0.serial == revoked.serial })
            #expect(record.status == .revoked)
            #expect(record.revocation?.reason == .keyCompromise)
            #expect(try !session.validLeaves().contains { $0.serial == revoked.serial })
        }
        let crlText = try S.tool(["openssl", "crl", "-in", directory.file(CADirectory.crl), "-noout", "-text"])
        #expect(crlText.output.uppercased().contains(revoked.serial.hex.uppercased()))
        let index = String(decoding: S.read(directory.file(OpenSSLIndex.fileName)) ?? Data(), as: UTF8.self)
        #expect(index.split(separator: "\n").contains { $0.hasPrefix("R") && $0.contains(revoked.serial.hex) })
        let work = try S.temporaryDirectory("session-crl")
        let verify = { (leaf: IssuedCertificate) in
            try S.opensslVerifies(leaf: try S.file(leaf.certificatePEM, named: "\(leaf.serial.hex).pem", in: work),
                                  trusted: directory.file(CADirectory.rootCertificate),
                                  untrusted: directory.file(CADirectory.intermediateCertificate), crl: directory.file(CADirectory.crl))
        }
        #expect(try !verify(revoked))
        #expect(try verify(kept))
    }

    @Test("a fresh CRL without revocations raises the CRL number")
    func crlNumberRises() throws {
        let directory = try S.newCA()
        let numbers = try S.withSession(directory) { session throws in
            [try session.revokeAndPublishCRL([]).number, try session.revokeAndPublishCRL([]).number]
        }
        #expect(numbers[1] > numbers[0])
        #expect(numbers[0] > 1)
        let text = try S.tool(["openssl", "crl", "-in", directory.file(CADirectory.crl), "-noout", "-crlnumber"]).output
        #expect(text.contains(String(format: "%02X", numbers[1])) || text.contains("\(numbers[1])"))
    }

    // MARK: - recovery of interrupted changes

    /// Damages the directory with `damage`, then opens a session with `access`; the files must
    /// come back to what they were, byte for byte and 0600.
    static func expectRecovery(_ directory: CADirectory, access: CASession.Access = .read, changesContent: Bool = true,
                               damage: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let good = derivedFiles(directory)
        try damage()
        if changesContent {
            #expect(derivedFiles(directory) != good, "the damage changed nothing", sourceLocation: sourceLocation)
        }
        try S.withSession(directory, access) { _ in }
        let recovered = derivedFiles(directory)
        #expect(Set(recovered.keys) == Set(good.keys), "names differ: \(Set(recovered.keys).symmetricDifference(good.keys))",
                sourceLocation: sourceLocation)
        for (name, content) in good where recovered[name] != content {
            Issue.record("\(name) was not rewritten from ca.db", sourceLocation: sourceLocation)
        }
        for name in good.keys where !name.contains("/") {
            #expect(S.mode(directory.file(name)) == 0o600, "\(name) mode", sourceLocation: sourceLocation)
        }
    }

    static let viewFiles = [CADirectory.rootCertificate, CADirectory.rootKey, CADirectory.intermediateCertificate,
                            CADirectory.intermediateKey, CADirectory.crl, OpenSSLIndex.fileName, OpenSSLIndex.attributesFileName]

    @Test("a file the run did not get to write is written by the next open", arguments: viewFiles)
    func missingFileRewritten(name: String) throws {
        let directory = try Self.issuedCA()
        try Self.expectRecovery(directory) { try FileManager.default.removeItem(atPath: directory.file(name)) }
    }

    @Test("a file left with old or torn content is rewritten by the next open", arguments: viewFiles)
    func staleFileRewritten(name: String) throws {
        let directory = try Self.issuedCA()
        try Self.expectRecovery(directory) {
            let content = S.read(directory.file(name)) ?? Data()
            try content.prefix(content.count / 2).write(to: URL(fileURLWithPath: directory.file(name)))
        }
    }

    @Test("a file with a wider mode is put back to 0600", arguments: [CADirectory.rootKey, CADirectory.intermediateKey, OpenSSLIndex.fileName])
    func wideModeRewritten(name: String) throws {
        let directory = try Self.issuedCA()
        try Self.expectRecovery(directory, changesContent: false) {
            chmod(directory.file(name), 0o644)
            #expect(S.mode(directory.file(name)) == 0o644)
        }
        #expect(S.mode(directory.file(name)) == 0o600)
    }

    @Test("an issue killed after its commit: index.txt from before it is brought up to date")
    func interruptedIssue() throws {
        let directory = try S.newCA()
        let oldIndex = S.read(directory.file(OpenSSLIndex.fileName))!
        let issued = try S.issue(directory, try S.inventory())
        try Self.expectRecovery(directory) { try oldIndex.write(to: URL(fileURLWithPath: directory.file(OpenSSLIndex.fileName))) }
        let index = String(decoding: S.read(directory.file(OpenSSLIndex.fileName))!, as: UTF8.self)
        for leaf in issued { #expect(index.contains(leaf.signed.serial.hex)) }
    }

    @Test("a revoke killed after its commit: the old crl.pem is replaced by the committed one")
    func interruptedRevoke() throws {
        let directory = try Self.issuedCA()
        let oldCRL = S.read(directory.file(CADirectory.crl))!
        let serial = try S.withSession(directory) { session throws in
            let serial = try session.validLeaves()[0].serial
            _ = try session.revokeAndPublishCRL([serial])
            return serial
        }
        try Self.expectRecovery(directory) { try oldCRL.write(to: URL(fileURLWithPath: directory.file(CADirectory.crl))) }
        let text = try S.tool(["openssl", "crl", "-in", directory.file(CADirectory.crl), "-noout", "-text"]).output
        #expect(text.uppercased().contains(serial.hex.uppercased()))
    }

    @Test("a rotation killed after its commit: previous-*, cross-signed.pem and trust-bundle.pem are written")
    func interruptedRotation() throws {
        let directory = try Self.issuedCA()
        try S.withSession(directory) { session in _ = try CARotation.start(session, inventory: nil) }
        let rotationFiles = [CADirectory.previousRoot, CADirectory.previousRootKey, CADirectory.previousIntermediate,
                             CADirectory.previousIntermediateKey, CADirectory.crossSigned, CADirectory.trustBundle]
        for name in rotationFiles { #expect(S.exists(directory.file(name)), "\(name)") }
        try Self.expectRecovery(directory) {
            for name in rotationFiles { try FileManager.default.removeItem(atPath: directory.file(name)) }
        }
    }

    @Test("a rotation's root.pem still holding the old root is replaced by the new one")
    func interruptedRotationOldRoot() throws {
        let directory = try Self.issuedCA()
        let oldRoot = S.read(directory.file(CADirectory.rootCertificate))!
        try S.withSession(directory) { session in _ = try CARotation.start(session, inventory: nil) }
        try Self.expectRecovery(directory) { try oldRoot.write(to: URL(fileURLWithPath: directory.file(CADirectory.rootCertificate))) }
        #expect(S.read(directory.file(CADirectory.rootCertificate)) != oldRoot)
    }

    @Test("a finished rotation killed before its files: previous-* are removed and retired/ written")
    func interruptedFinish() throws {
        let directory = try Self.issuedCA()
        try S.withSession(directory) { session in _ = try CARotation.start(session, inventory: nil) }
        try S.issue(directory, try S.inventory())
        let duringRotation = Self.derivedFiles(directory)
        try S.withSession(directory) { session in _ = try CARotation.finish(session, installed: nil) }
        #expect(!S.exists(directory.file(CADirectory.previousRoot)))
        try Self.expectRecovery(directory) {
            // put back what the rotation's files were: as if the finish committed and was killed at once
            for name in [CADirectory.previousRoot, CADirectory.previousRootKey, CADirectory.crossSigned] {
                try duringRotation[name]!.write(to: URL(fileURLWithPath: directory.file(name)))
            }
            try FileManager.default.removeItem(atPath: directory.file(CADirectory.retired))
        }
        #expect(!S.exists(directory.file(CADirectory.previousRoot)))
        #expect(!S.names(in: directory.file(CADirectory.retired)).isEmpty)
    }

    @Test("a growth killed after its commit: the older intermediate's file is written, a stale one removed")
    func interruptedGrowth() throws {
        let directory = try Self.issuedCA()
        // a new host outside nothing (no constraints), so grow explicitly with an intermediate
        let grown = try S.inventory(S.inventoryYAML.replacingOccurrences(of: "services:", with: """
              - {name: node-4.example.com, ips: [10.9.0.4], groups: [backend]}
            services:
            """))
        try S.withSession(directory) { session throws in
            let plan = try S.plan(session, grown)
            _ = try session.issue(plan.work, growingWith: NameConstraintsPolicy.constraints(for: grown))
        }
        let older = S.names(in: directory.path).filter { $0.hasPrefix(CAFiles.olderIntermediatePrefix) }
        #expect(older.count == 1)
        try Self.expectRecovery(directory) { try FileManager.default.removeItem(atPath: directory.file(older.first!)) }
        // an older intermediate's file that ca.db does not have (retired meanwhile) goes
        let stray = CAFiles.olderIntermediateName(try SerialNumber.random())
        try S.write("stale", to: directory.file(stray))
        try S.withSession(directory, .read) { _ in }
        #expect(!S.exists(directory.file(stray)))
    }

    @Test("leftovers of killed writes are removed; the operator's own files stay", arguments: [
        ".root.pem.tmp-Ab12Cd", ".index.txt.tmp-000000", ".ca.db.init-4242-deadbeef", ".ca.db.init-1-x-wal", ".init-old", "root.pem.new", "crl.pem.new",
    ])
    func stagingRemoved(name: String) throws {
        let directory = try S.newCA()
        try S.write("leftover", to: directory.file(name))
        try S.write("mine", to: directory.file("notes.txt"))
        try S.write("mine", to: directory.file("backup.new"))
        try S.withSession(directory, .read) { _ in }
        #expect(!S.exists(directory.file(name)))
        #expect(S.read(directory.file("notes.txt")) == Data("mine".utf8))
        #expect(S.read(directory.file("backup.new")) == Data("mine".utf8))
    }

    @Test("a temporary left in retired/ is removed")
    func retiredStagingRemoved() throws {
        let directory = try S.newCA()
        try FileManager.default.createDirectory(atPath: directory.file(CADirectory.retired), withIntermediateDirectories: false)
        try S.write("leftover", to: directory.file(CADirectory.retired + "/.x-previous-root.pem.tmp-123456"))
        try S.withSession(directory, .read) { _ in }
        #expect(S.names(in: directory.file(CADirectory.retired)).isEmpty)
    }

    @Test("a clean CA opened to read is left untouched (no rewrite, no upgrade of the lock)")
    func cleanOpenWritesNothing() throws {
        let directory = try Self.issuedCA()
        var inodes: [String: UInt64] = [:]
        for name in Self.viewFiles { inodes[name] = try FileManager.default.attributesOfItem(atPath: directory.file(name))[.systemFileNumber] as? UInt64 }
        // another reader holds the lock: a reader that needed to upgrade would wait here
        let reader = try LockHolder(directory.path, shared: true)
        let open = Background { try S.withSession(directory, .read) { _ in } }
        guard case .success? = open.wait(30) else {
            Issue.record("a clean open waited for another reader")
            reader.release()
            return
        }
        reader.release()
        for name in Self.viewFiles {
            #expect(try FileManager.default.attributesOfItem(atPath: directory.file(name))[.systemFileNumber] as? UInt64 == inodes[name],
                    "\(name) was rewritten")
        }
    }

    @Test("a reader that must recover waits for the other reader, then recovers")
    func recoveringReaderUpgrades() throws {
        let directory = try Self.issuedCA()
        let good = S.read(directory.file(CADirectory.crl))
        try FileManager.default.removeItem(atPath: directory.file(CADirectory.crl))
        let reader = try LockHolder(directory.path, shared: true)
        let open = Background { try S.withSession(directory, .read) { _ in } }
        #expect(open.wait(0.5) == nil, "recovered while another process reads")
        #expect(!S.exists(directory.file(CADirectory.crl)))
        reader.release()
        guard case .success? = open.wait(30) else {
            Issue.record("the recovering reader never finished")
            return
        }
        #expect(S.read(directory.file(CADirectory.crl)) == good)
    }

    @Test("an unreadable stored CA certificate is refused naming ca.db")
    func corruptDatabase() throws {
        let directory = try S.newCA()
        let (status, output) = try S.tool(["sqlite3", directory.file(CADatabase.fileName),
                                            "UPDATE certificates SET certificate_pem = 'garbage' WHERE kind = 'root';"])
        guard status == 0 else {
            Issue.record("sqlite3 failed: \(output)")
            return
        }
        let error = CATestSupport.refusal { _ = try S.open(directory, .read) }
        #expect(error?.kind == .refused)
        #expect(error?.file == directory.file(CADatabase.fileName))
    }
}
