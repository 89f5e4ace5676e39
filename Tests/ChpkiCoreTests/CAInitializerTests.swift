import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// CAInitializer (`init-ca`): what a new CA is (a self-signed root, an intermediate for path
/// length 0 holding the name constraints, an empty CRL), how its keys are protected (clear, one
/// passphrase, root apart), the files and modes it leaves, and every refusal leaving the directory
/// exactly as it was, including a concurrent init-ca and the remains of a killed one.
@Suite("CA initializer")
struct CAInitializerTests {
    typealias S = CATestSupport

    static func request(_ path: String, intermediate: Bool = true, operations: String? = nil, root: String? = nil,
                        keyType: KeyType = .ecP256, validity: Period = Period(amount: 2, unit: .years),
                        constraints: NameConstraints? = nil, subject: String = "Init Test Root", now: Date = Date()) -> CAInitializer.Request {
        CAInitializer.Request(directory: CADirectory(path: path), subject: DistinguishedName([.init("O", "Unit Tests"), .init("CN", subject)]),
                              keyType: keyType, validity: validity, nameConstraints: constraints, intermediate: intermediate,
                              passphrase: operations.map(S.passphrase), rootPassphrase: root.map(S.passphrase), now: now)
    }

    static func target() throws -> String { try S.temporaryDirectory("init") + "/ca" }

    static func certificate(_ path: String) throws -> Certificate {
        try Certificate(pem: try #require(S.read(path)))
    }

    static let constraints = NameConstraints(permitted: [.dns("example.com"), .ipNetwork(address: [10, 0, 0, 0], mask: [255, 0, 0, 0])])

    // MARK: - what is made

    @Test("with an intermediate: root, intermediate, CRL, index and ca.db, each 0600 in a 0700 directory")
    func filesAndModes() throws {
        let path = try Self.target()
        let result = try CAInitializer.create(Self.request(path))
        #expect(Set(result.files) == [CADirectory.rootKey, CADirectory.rootCertificate, CADirectory.intermediateKey,
                                     CADirectory.intermediateCertificate, CADirectory.crl, OpenSSLIndex.fileName,
                                     OpenSSLIndex.attributesFileName, CADatabase.fileName])
        for name in result.files {
            #expect(S.exists(path + "/" + name), "\(name)")
            // ca.db's mode is the process umask's (the CLI sets 077, and CAPermissions puts it back to 0600)
            if name != CADatabase.fileName { #expect(S.mode(path + "/" + name) == 0o600, "\(name)") }
        }
        #expect(S.mode(path) == 0o700)
        #expect(result.intermediate != nil)
        #expect(!result.keyEncrypted)
        #expect(!result.rootKeyApart)
        // nothing else: no staging left
        let extra = S.names(in: path).subtracting(result.files).filter { !$0.hasPrefix(CADatabase.fileName) }
        #expect(extra.isEmpty, "\(extra)")
    }

    @Test("without an intermediate: the root alone signs, and no intermediate file exists")
    func rootOnly() throws {
        let path = try Self.target()
        let result = try CAInitializer.create(Self.request(path, intermediate: false))
        #expect(result.intermediate == nil)
        #expect(!S.exists(path + "/" + CADirectory.intermediateCertificate))
        #expect(!S.exists(path + "/" + CADirectory.intermediateKey))
        #expect(!CADirectory(path: path).hasIntermediate)
        let crl = try S.tool(["openssl", "crl", "-in", path + "/crl.pem", "-noout", "-CAfile", path + "/root.pem"])
        #expect(crl.status == 0, "\(crl.output)")
    }

    @Test("the root is self-signed, a CA without a path length, for certificate and CRL signing; openssl agrees")
    func rootCertificate() throws {
        let now = Date()
        let path = try Self.target()
        let result = try CAInitializer.create(Self.request(path, validity: Period(amount: 3, unit: .years), now: now))
        let root = result.root
        #expect(root.isSelfSigned)
        #expect(root.isCA)
        #expect(root.pathLength == nil)
        #expect(root.keyUsage.contains(.keyCertSign) && root.keyUsage.contains(.cRLSign))
        #expect(root.subject == DistinguishedName([.init("O", "Unit Tests"), .init("CN", "Init Test Root")]))
        #expect(abs(root.notBefore.timeIntervalSince(now.addingTimeInterval(-CAInitializer.backdating))) < 2)
        #expect(abs(root.notAfter.timeIntervalSince(Period(amount: 3, unit: .years).after(now))) < 2)
        #expect(root.nameConstraints == nil)
        #expect(try S.opensslVerifies(leaf: path + "/root.pem", trusted: path + "/root.pem"))
        #expect(try Self.certificate(path + "/root.pem").serial == root.serial)
    }

    @Test("the intermediate: signed by the root, path length 0, named '<CN> Intermediate', at most 5 years and never past the root")
    func intermediateCertificate() throws {
        let now = Date()
        let path = try Self.target()
        let result = try CAInitializer.create(Self.request(path, validity: Period(amount: 10, unit: .years), now: now))
        let intermediate = try #require(result.intermediate)
        #expect(intermediate.isSigned(by: result.root))
        #expect(intermediate.isCA)
        #expect(intermediate.pathLength == 0)
        #expect(intermediate.subject.attributes.last?.value == "Init Test Root Intermediate")
        #expect(intermediate.keyType == IssuingIntermediate.keyType)
        #expect(abs(intermediate.notAfter.timeIntervalSince(IssuingIntermediate.validity.after(now))) < 2)
        #expect(try S.opensslVerifies(leaf: path + "/intermediate.pem", trusted: path + "/root.pem"))
        // a root shorter than 5 years caps it
        let short = try Self.target()
        let capped = try CAInitializer.create(Self.request(short, validity: Period(amount: 1, unit: .years), now: now))
        #expect(capped.intermediate?.notAfter == capped.root.notAfter)
    }

    @Test("the intermediate's CN is cut to 64 characters")
    func longCommonName() throws {
        let path = try Self.target()
        let name = String(repeating: "N", count: 60)
        let result = try CAInitializer.create(Self.request(path, subject: name))
        let cn = try #require(result.intermediate?.subject.attributes.last?.value)
        #expect(cn.count == 64)
        #expect(cn.hasPrefix(name))
    }

    @Test("name constraints go on the intermediate, or on the root when it signs leaves")
    func constraintsPlacement() throws {
        let path = try Self.target()
        let result = try CAInitializer.create(Self.request(path, constraints: Self.constraints))
        #expect(result.root.nameConstraints == nil)
        #expect(result.intermediate?.nameConstraints == Self.constraints)
        #expect(result.intermediate?.isCritical("nameConstraints") == true)
        let rootOnly = try CAInitializer.create(Self.request(try Self.target(), intermediate: false, constraints: Self.constraints))
        #expect(rootOnly.root.nameConstraints == Self.constraints)
    }

    @Test("the first CRL: number 1, empty, signed by the issuing CA, valid 30 days")
    func firstCRL() throws {
        let now = Date()
        let path = try Self.target()
        _ = try CAInitializer.create(Self.request(path, now: now))
        let text = try S.tool(["openssl", "crl", "-in", path + "/crl.pem", "-noout", "-text", "-CAfile", path + "/intermediate.pem"])
        #expect(text.status == 0, "\(text.output)")
        #expect(text.output.contains("verify OK"))
        #expect(text.output.contains("No Revoked Certificates"))
        let number = try S.tool(["openssl", "crl", "-in", path + "/crl.pem", "-noout", "-crlnumber"]).output
        #expect(number.contains("crlNumber=0x01") || number.contains("crlNumber=01"), "\(number)")
        let session = try S.open(CADirectory(path: path), .read)
        #expect(try session.database.publishedState().crlNumber == 1)
        #expect(CRLPolicy.nextUpdate(after: now) == CRLPolicy.validity.after(now))
    }

    @Test("index.txt starts with the intermediate alone (valid), and the attributes say unique_subject = no")
    func firstIndex() throws {
        let path = try Self.target()
        let result = try CAInitializer.create(Self.request(path))
        let lines = String(decoding: S.read(path + "/index.txt") ?? Data(), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.hasPrefix("V\t") == true)
        #expect(lines.first?.contains(result.intermediate!.serial.hex) == true)
        let rootOnly = try Self.target()
        _ = try CAInitializer.create(Self.request(rootOnly, intermediate: false))
        #expect(S.read(rootOnly + "/index.txt") == Data())
        #expect(String(decoding: S.read(path + "/index.txt.attr") ?? Data(), as: UTF8.self).contains("unique_subject = no"))
    }

    @Test("the new CA opens as a session with the same certificates it returned")
    func opensAfterwards() throws {
        let path = try Self.target()
        let result = try CAInitializer.create(Self.request(path))
        try S.withSession(CADirectory(path: path), .read) { session throws in
            #expect(session.root.serial == result.root.serial)
            #expect(session.issuingCertificate.serial == result.intermediate?.serial)
            #expect(try session.certificates().count == 2)
            #expect(try session.validLeaves().isEmpty)
        }
    }

    @Test("each key type makes a root that signs", arguments: [KeyType.ecP256, .ecP384, .ed25519, .rsa2048])
    func keyTypes(keyType: KeyType) throws {
        let path = try Self.target()
        let result = try CAInitializer.create(Self.request(path, intermediate: false, keyType: keyType))
        #expect(result.root.keyType == keyType)
        #expect(try S.opensslVerifies(leaf: path + "/root.pem", trusted: path + "/root.pem"))
        let key = try S.tool(["openssl", "pkey", "-in", path + "/root.key", "-noout"])
        #expect(key.status == 0)
    }

    // MARK: - keys

    @Test("without a passphrase the keys are in clear (openssl reads them without one)")
    func clearKeys() throws {
        let path = try Self.target()
        _ = try CAInitializer.create(Self.request(path))
        for name in ["root.key", "intermediate.key"] {
            let text = String(decoding: S.read(path + "/" + name) ?? Data(), as: UTF8.self)
            #expect(text.hasPrefix("-----BEGIN PRIVATE KEY-----"), "\(name)")
        }
    }

    @Test("with one passphrase both keys are encrypted under it; openssl opens them with it and not without")
    func onePassphrase() throws {
        let path = try Self.target()
        let passFile = try S.file(S.operations + "\n", named: "pass", in: try S.temporaryDirectory("init-pass"))
        let result = try CAInitializer.create(Self.request(path, operations: S.operations))
        #expect(result.keyEncrypted)
        #expect(!result.rootKeyApart)
        for name in ["root.key", "intermediate.key"] {
            let text = String(decoding: S.read(path + "/" + name) ?? Data(), as: UTF8.self)
            #expect(text.hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----"), "\(name)")
            #expect(try S.tool(["openssl", "pkey", "-in", path + "/" + name, "-passin", "file:" + passFile, "-noout"]).status == 0)
            #expect(try S.tool(["openssl", "pkey", "-in", path + "/" + name, "-passin", "pass:wrong", "-noout"]).status != 0)
        }
        // the private key never appears in clear in ca.db
        let database = String(decoding: S.read(path + "/ca.db") ?? Data(), as: UTF8.self)
        #expect(!database.contains("BEGIN PRIVATE KEY"))
    }

    @Test("with a root passphrase apart, the root opens only with it and the intermediate only with the operations one")
    func rootApart() throws {
        let path = try Self.target()
        let result = try CAInitializer.create(Self.request(path, operations: S.operations, root: S.rootSecret))
        #expect(result.rootKeyApart)
        let directory = CADirectory(path: path)
        #expect((try? PrivateKey(pem: S.read(directory.file("root.key"))!, passphrase: S.passphrase(S.rootSecret))) != nil)
        #expect((try? PrivateKey(pem: S.read(directory.file("root.key"))!, passphrase: S.passphrase(S.operations))) == nil)
        #expect((try? PrivateKey(pem: S.read(directory.file("intermediate.key"))!, passphrase: S.passphrase(S.operations))) != nil)
        try S.withSession(directory, .read, operations: S.operations) { session throws in
            #expect(try session.rootKeyApart())
        }
    }

    @Test("a root passphrase without an intermediate is not apart: the root is the issuing key")
    func rootPassphraseWithoutIntermediate() throws {
        let path = try Self.target()
        let result = try CAInitializer.create(Self.request(path, intermediate: false, operations: S.operations, root: S.rootSecret))
        #expect(!result.rootKeyApart)
        #expect((try? PrivateKey(pem: S.read(path + "/root.key")!, passphrase: S.passphrase(S.operations))) != nil)
    }

    @Test("a root passphrase without an operations one keeps the keys in clear and not apart")
    func rootPassphraseOnly() throws {
        let path = try Self.target()
        let result = try CAInitializer.create(Self.request(path, root: S.rootSecret))
        #expect(!result.keyEncrypted)
        #expect(!result.rootKeyApart)
        #expect(String(decoding: S.read(path + "/root.key") ?? Data(), as: UTF8.self).hasPrefix("-----BEGIN PRIVATE KEY-----"))
    }

    @Test("the key protection asked for is the one used (pbkdf2 for FIPS-minded operators)")
    func pbkdf2Protection() throws {
        let path = try Self.target()
        var request = Self.request(path, operations: S.operations)
        request.protection = .pbkdf2(iterations: 1000)
        _ = try CAInitializer.create(request)
        let info = try S.tool(["openssl", "asn1parse", "-in", path + "/intermediate.key"]).output
        #expect(info.contains("PBKDF2"))
        #expect(!info.contains("id-scrypt") && !info.contains("scrypt"))
    }

    @Test("scrypt is the default protection")
    func scryptDefault() throws {
        let path = try Self.target()
        _ = try CAInitializer.create(Self.request(path, operations: S.operations))
        let info = try S.tool(["openssl", "asn1parse", "-in", path + "/root.key"]).output
        #expect(info.lowercased().contains("scrypt"))
    }

    // MARK: - refusals

    static func expectRefusedUnchanged(_ path: String, field: String? = nil, _ request: CAInitializer.Request,
                                       sourceLocation: SourceLocation = #_sourceLocation) {
        let before = S.names(in: path)
        let contents = before.map { S.read(path + "/" + $0) }
        let error = CATestSupport.refusal({ _ = try CAInitializer.create(request) }, sourceLocation: sourceLocation)
        #expect(error?.kind == .refused, sourceLocation: sourceLocation)
        if let field { #expect(error?.field == field, sourceLocation: sourceLocation) }
        #expect(S.names(in: path) == before, sourceLocation: sourceLocation)
        #expect(before.map { S.read(path + "/" + $0) } == contents, sourceLocation: sourceLocation)
    }

    @Test("init-ca never overwrites a CA: any of its files makes it refuse", arguments: CADirectory.authorityFiles)
    func refusesExisting(name: String) throws {
        let path = try Self.target()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        try S.write("precious", to: path + "/" + name)
        Self.expectRefusedUnchanged(path, Self.request(path))
        #expect(S.read(path + "/" + name) == Data("precious".utf8))
    }

    @Test("a second init-ca on a made CA is refused and the CA is intact")
    func secondInit() throws {
        let path = try Self.target()
        let first = try CAInitializer.create(Self.request(path))
        Self.expectRefusedUnchanged(path, Self.request(path))
        try S.withSession(CADirectory(path: path), .read) { session throws in
            #expect(session.root.serial == first.root.serial)
        }
    }

    @Test("a file where the directory should be is refused naming --ca-dir")
    func fileInTheWay() throws {
        let parent = try S.temporaryDirectory("init")
        try S.write("a file", to: parent + "/ca")
        let error = CATestSupport.refusal { _ = try CAInitializer.create(Self.request(parent + "/ca")) }
        #expect(error?.field == "--ca-dir")
        #expect(S.read(parent + "/ca") == Data("a file".utf8))
    }

    @Test("a missing parent is refused; nothing is created on the way")
    func missingParent() throws {
        let parent = try S.temporaryDirectory("init")
        let error = CATestSupport.refusal { _ = try CAInitializer.create(Self.request(parent + "/a/b/ca")) }
        #expect(error?.field == "--ca-dir")
        #expect(!S.exists(parent + "/a"))
    }

    @Test("an existing empty directory is used, and made 0700")
    func existingEmptyDirectory() throws {
        let path = try Self.target()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        _ = try CAInitializer.create(Self.request(path))
        #expect(S.mode(path) == 0o700)
        #expect(S.exists(path + "/ca.db"))
    }

    @Test("an existing directory with the operator's other files is used and those files are kept")
    func existingDirectoryWithOtherFiles() throws {
        let path = try Self.target()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        try S.write("keep me", to: path + "/README")
        _ = try CAInitializer.create(Self.request(path))
        #expect(S.read(path + "/README") == Data("keep me".utf8))
    }

    @Test("a failure while building the CA (a subject OpenSSL rejects) leaves no directory behind")
    func failureLeavesNothing() throws {
        let path = try Self.target()
        var request = Self.request(path)
        request.subject = DistinguishedName([.init("NOT-AN-ATTRIBUTE", "x")])
        #expect(throws: (any Error).self) { _ = try CAInitializer.create(request) }
        #expect(!S.exists(path))
    }

    @Test("the remains of a killed init-ca (its staging database) are removed by the next one")
    func killedInitRemains() throws {
        let path = try Self.target()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        for name in [".ca.db.init-999-abcdef12", ".ca.db.init-999-abcdef12-wal", ".ca.db.init-999-abcdef12-journal", ".root.pem.tmp-XyZ123"] {
            try S.write("remains", to: path + "/" + name)
        }
        _ = try CAInitializer.create(Self.request(path))
        let left = S.names(in: path).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty, "\(left)")
    }

    // MARK: - concurrency

    @Test("two init-ca at once on one directory: exactly one CA, the other refused")
    func concurrentInits() throws {
        let path = try Self.target()
        let runs = (0..<3).map { _ in Background { try CAInitializer.create(Self.request(path)) } }
        var made: [CAInitializer.Result] = []
        var refused = 0
        for run in runs {
            switch run.wait(120) {
            case let .success(result)?: made.append(result)
            case let .failure(error as ChpkiError)?: if error.kind == .refused { refused += 1 }
            case let .failure(error)?: Issue.record("unexpected \(error)")
            case nil: Issue.record("an init-ca never finished")
            }
        }
        #expect(made.count == 1)
        #expect(refused == 2)
        try S.withSession(CADirectory(path: path), .read) { session throws in
            #expect(session.root.serial == made.first?.root.serial)
        }
    }

    @Test("init-ca waits for another process holding the directory, then refuses if that made a CA meanwhile")
    func waitsForLock() throws {
        let path = try Self.target()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        let holder = try LockHolder(path)
        let waited = Flag()
        let run = Background { try CAInitializer.create(Self.request(path), waitingForLock: { waited.set() }) }
        #expect(run.wait(1) == nil, "init-ca went on under another process's lock")
        #expect(waited.isSet)
        // the other process "makes a CA" while it holds the lock
        try S.write("someone else's CA", to: path + "/" + CADirectory.rootCertificate)
        holder.release()
        switch run.wait(60) {
        case let .failure(error as ChpkiError)?: #expect(error.kind == .refused)
        case .success?: Issue.record("init-ca overwrote a CA made while it waited")
        default: Issue.record("init-ca did not finish")
        }
        #expect(S.read(path + "/" + CADirectory.rootCertificate) == Data("someone else's CA".utf8))
        #expect(!S.exists(path + "/ca.db"))
    }
}
