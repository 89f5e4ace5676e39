import Foundation
import GRDB
import Testing
@testable import ChpkiCore
@testable import ChpkiCA
@testable import ChpkiOpenSSL

/// CADatabase as the typed boundary: what goes in comes back typed, each change is one transaction,
/// a first-release schema is migrated in place, and sealed keys open only with the passphrase.
@Suite("CA database")
struct CADatabaseTests {
    static let passphrase = try! Passphrase(bytes: Array("database test passphrase".utf8), source: "test")

    struct Fixture {
        var directory: String
        var database: CADatabase
        var root: Certificate
        var intermediate: Certificate
        var rootKey: PrivateKey
        var intermediateKey: PrivateKey
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "chpki-db-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func authority(_ cn: String, signedBy issuer: (Certificate, PrivateKey)?, pathLength: Int? = nil) throws -> (Certificate, PrivateKey) {
        let key = try PrivateKey.generate(.ecP256)
        let template = CertificateTemplate(subject: DistinguishedName([.init("CN", cn)]), serial: try .random(),
                                           notBefore: Date().addingTimeInterval(-60), notAfter: Date().addingTimeInterval(86400 * 30),
                                           certificateAuthority: .init(pathLength: pathLength), keyUsage: [.keyCertSign, .cRLSign])
        let signer = issuer.map { Signer(certificate: $0.0, key: $0.1) } ?? Signer(certificate: nil, key: key)
        return (try template.sign(publicKeyOf: key, by: signer), key)
    }

    static func fixture() throws -> Fixture {
        let directory = try temporaryDirectory()
        let database = try CADatabase(path: directory + "/ca.db")
        let (root, rootKey) = try authority("Test Root", signedBy: nil)
        let (intermediate, intermediateKey) = try authority("Test Intermediate", signedBy: (root, rootKey), pathLength: 0)
        let crl = try CertificateRevocationList.sign(entries: [], number: 1, thisUpdate: Date(), nextUpdate: Date().addingTimeInterval(86400),
                                                     issuer: intermediate, key: intermediateKey)
        try database.initialize(authorities: [
            .init(certificate: root, kind: .root, issuerSerial: nil, keyPEM: try rootKey.pkcs8PEM(), role: .current),
            .init(certificate: intermediate, kind: .intermediate, issuerSerial: root.serial, keyPEM: try intermediateKey.pkcs8PEM(), role: .current),
        ], crl: .init(number: 1, pem: try crl.pemEncoded()), leafKeyWrap: nil, now: Date())
        return Fixture(directory: directory, database: database, root: root, intermediate: intermediate,
                       rootKey: rootKey, intermediateKey: intermediateKey)
    }

    static func leaf(_ fixture: Fixture, host: String, supersedes: SerialNumber? = nil) throws -> CADatabase.NewLeaf {
        let profile = CertificateProfile(
            identity: CertificateIdentity(kind: .server, host: host, service: "etcd", name: host),
            subject: DistinguishedName([.init("CN", host)]), subjectAlternativeNames: [.dns(host), .ip([10, 0, 0, 1])],
            extendedKeyUsage: [.serverAuth], keyType: .ecP256, validity: Period(amount: 30, unit: .days),
            renewBefore: Period(amount: 7, unit: .days))
        let worker = try SigningWorker(signer: Signer(certificate: fixture.intermediate, key: fixture.intermediateKey))
        let key = try worker.generateKey(.ecP256)
        let signed = try worker.sign(profile.template(serial: try .random(), now: Date(), issuerNotAfter: fixture.intermediate.notAfter),
                                     publicKeyOf: key)
        var pem = try key.pkcs8PEM()
        return .init(signed: signed, profile: profile, issuerSerial: fixture.intermediate.serial,
                     key: .clear(SecretBytes(consuming: &pem)), supersedes: supersedes)
    }

    @Test("a recorded leaf comes back typed: serial, kind, SANs, profile, key type, issuer")
    func typedRoundTrip() throws {
        let fixture = try Self.fixture()
        let leaf = try Self.leaf(fixture, host: "node-1.example.com")
        try fixture.database.recordIssued([leaf], now: Date())
        let stored = try #require(try fixture.database.validLeaves().first)
        #expect(stored.serial == leaf.signed.serial)
        #expect(stored.kind == .server)
        #expect(stored.subjectAlternativeNames == [.dns("node-1.example.com"), .ip([10, 0, 0, 1])])
        #expect(stored.profile == leaf.profile.essentials)
        #expect(stored.keyType == .ecP256)
        #expect(stored.issuerSerial == fixture.intermediate.serial)
        let authorities = try fixture.database.authorities()
        #expect(authorities.map(\.authorityRole) == [.current, .current])
        #expect(AuthorityRoles(authorities).primaryIntermediate?.serial == fixture.intermediate.serial)
    }

    @Test("supersede and revoke are one transaction each; the CRL is stored with the revocation")
    func supersedeAndRevoke() throws {
        let fixture = try Self.fixture()
        let first = try Self.leaf(fixture, host: "node-1.example.com")
        try fixture.database.recordIssued([first], now: Date())
        let second = try Self.leaf(fixture, host: "node-1.example.com", supersedes: first.signed.serial)
        try fixture.database.recordIssued([second], now: Date())
        #expect(try fixture.database.certificate(serial: first.signed.serial)?.status == .superseded)
        #expect(try fixture.database.certificate(serial: first.signed.serial)?.supersededBy == second.signed.serial)

        // A failing signer leaves nothing changed: not the status, not the CRL number.
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try fixture.database.revokeAndPublish([second.signed.serial], at: Date(), reason: .keyCompromise,
                                                  issuer: fixture.intermediate.serial) { _ in throw Boom() }
        }
        #expect(try fixture.database.certificate(serial: second.signed.serial)?.status == .valid)
        #expect(try fixture.database.publishedState().crlNumber == 1)

        let signed = try fixture.database.revokeAndPublish([second.signed.serial], at: Date(), reason: .keyCompromise,
                                                           issuer: fixture.intermediate.serial) { input in
            #expect(input.revoked.map(\.serial) == [second.signed.serial])
            return Data("crl \(input.number)".utf8)
        }
        #expect(signed.number == 2)
        let state = try fixture.database.publishedState()
        #expect(state.crlNumber == 2 && state.crlPEM == Data("crl 2".utf8))
        let revoked = try #require(try fixture.database.certificate(serial: second.signed.serial))
        #expect(revoked.status == .revoked && revoked.revocation?.reason == .keyCompromise)
    }

    @Test("two valid certificates of one identity are refused by the schema")
    func oneValidPerIdentity() throws {
        let fixture = try Self.fixture()
        try fixture.database.recordIssued([try Self.leaf(fixture, host: "node-1.example.com")], now: Date())
        #expect(throws: (any Error).self) {
            try fixture.database.recordIssued([try Self.leaf(fixture, host: "node-1.example.com")], now: Date())
        }
        #expect(try fixture.database.validLeaves().count == 1)
    }

    @Test("rotation moves roles in one transaction; finishing retires the previous ones")
    func rotationRoles() throws {
        let fixture = try Self.fixture()
        let (newRoot, newRootKey) = try Self.authority("Test Root G2", signedBy: nil)
        let (cross, _) = try Self.authority("Cross", signedBy: (fixture.root, fixture.rootKey))
        try fixture.database.startRotation([.init(certificate: newRoot, kind: .root, issuerSerial: nil,
                                                  keyPEM: try newRootKey.pkcs8PEM(), role: .current)], crossSigned: cross, now: Date())
        var roles = AuthorityRoles(try fixture.database.authorities())
        #expect(roles.currentRoot?.serial == newRoot.serial)
        #expect(roles.previousRoot?.serial == fixture.root.serial)
        #expect(roles.previousIntermediate?.serial == fixture.intermediate.serial)
        #expect(try fixture.database.publishedState().crossSignedPEM != nil)
        try fixture.database.finishRotation()
        roles = AuthorityRoles(try fixture.database.authorities())
        #expect(roles.previousRoot == nil)
        #expect(try fixture.database.authorities().filter { $0.authorityRole == .retired }.count == 2)
        #expect(try fixture.database.publishedState().crossSignedPEM == nil)
    }

    @Test("sealed leaf keys open with the passphrase only, and only under their own serial")
    func sealedKeys() throws {
        let fixture = try Self.fixture()
        let leaf = try Self.leaf(fixture, host: "node-1.example.com")
        try fixture.database.recordIssued([leaf], now: Date())
        #expect(try fixture.database.clearLeafKeyCount() == 1)
        let (vault, wrap) = try LeafKeyVault.create(passphrase: Self.passphrase)
        let sealed = try fixture.database.sealClearLeafKeys(wrap: wrap) { key, serial in try vault.seal(key, serial: serial) }
        #expect(sealed == 1)
        #expect(try fixture.database.clearLeafKeyCount() == 0)
        guard case let .sealed(box)? = try fixture.database.leafKeys([leaf.signed.serial])[leaf.signed.serial] else {
            Issue.record("the key is not sealed")
            return
        }
        let storedWrap = try #require(try fixture.database.publishedState().leafKeyWrap)
        let reopened = try LeafKeyVault.open(storedWrap, passphrase: Self.passphrase, source: "test")
        let key = try reopened.open(box, serial: leaf.signed.serial)
        guard case let .clear(original) = leaf.key else { return }
        #expect(key == original)
        #expect(throws: ChpkiError.self) { try reopened.open(box, serial: try .random()) }
        let wrong = try Passphrase(bytes: Array("another passphrase".utf8), source: "test")
        #expect(throws: ChpkiError.self) { try LeafKeyVault.open(storedWrap, passphrase: wrong, source: "test") }
    }

    @Test("a first-release database is migrated in place and flagged for adopting its files")
    func migratesFirstRelease() throws {
        let directory = try Self.temporaryDirectory()
        let path = directory + "/ca.db"
        // The first release's schema and one row, as its migrator left them.
        let queue = try DatabaseQueue(path: path)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE certificates (id INTEGER PRIMARY KEY AUTOINCREMENT, serial TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
                    host TEXT, service TEXT, name TEXT, subject TEXT NOT NULL, subject_oneline TEXT NOT NULL, profile TEXT,
                    sans TEXT NOT NULL DEFAULT '[]', key_type TEXT NOT NULL, issuer_serial TEXT, not_before DATETIME NOT NULL,
                    not_after DATETIME NOT NULL, status TEXT NOT NULL DEFAULT 'valid', revoked_at DATETIME, revocation_reason TEXT,
                    superseded_by TEXT, certificate_pem TEXT NOT NULL, private_key_pem TEXT, created_at DATETIME NOT NULL);
                INSERT INTO certificates (serial, kind, subject, subject_oneline, key_type, not_before, not_after, certificate_pem, created_at)
                    VALUES ('01AB', 'root', 'CN=Old', '/CN=Old', 'ec-p256', '2026-01-01 00:00:00', '2036-01-01 00:00:00', 'x', '2026-01-01 00:00:00');
                """)
        }
        try migrator.migrate(queue)
        try queue.close()
        #expect(CADatabase.needsMigration(path: path))
        let database = try CADatabase(path: path)
        #expect(!CADatabase.needsMigration(path: path))
        #expect(try database.publishedState().legacyFilesPending)
        let root = try #require(try database.authorities().first)
        #expect(root.serial == SerialNumber(hex: "01AB") && root.authorityRole == .current)
    }

    @Test("an unreadable row is refused naming it, not trapped on")
    func unreadableRow() throws {
        let fixture = try Self.fixture()
        try fixture.database.change({ _ in "a corrupted root" }) { db in
            try db.execute(sql: "UPDATE certificates SET serial = 'not hex' WHERE kind = 'root'")
        }
        #expect(throws: ChpkiError.self) { try fixture.database.authorities() }
    }

    @Test("scrypt parameters from a stored record are bounded")
    func scryptBounds() {
        #expect(Scrypt.Parameters.default.isAcceptable)
        #expect(!Scrypt.Parameters(n: 1 << 30, r: 8, p: 1).isAcceptable)
        #expect(!Scrypt.Parameters(n: 1000, r: 8, p: 1).isAcceptable)
        #expect(!Scrypt.Parameters(n: 32768, r: 0, p: 1).isAcceptable)
    }
}

/// The files of the CA directory as views of the database (`CAFiles`): what each role maps to.
@Suite("CA files")
struct CAFilesTests {
    @Test("before, during and after a rotation; a key not in the database is left alone")
    func views() throws {
        let fixture = try CADatabaseTests.fixture()
        func view() throws -> CAFiles.View {
            let authorities = try fixture.database.authorities()
            var keys: [SerialNumber: Data] = [:]
            for authority in authorities { keys[authority.serial] = try fixture.database.authorityKeyPEM(serial: authority.serial) }
            return CAFiles.render(.init(authorities: authorities, authorityKeys: keys, state: try fixture.database.publishedState(),
                                        indexEntries: try fixture.database.indexEntries(), now: Date()))
        }
        var files = try view()
        #expect(files.files[CADirectory.rootCertificate] == (try fixture.root.pemEncoded()))
        #expect(files.files[CADirectory.intermediateKey] == (try fixture.intermediateKey.pkcs8PEM()))
        #expect(files.absent.contains(CADirectory.trustBundle) && files.absent.contains(CADirectory.previousRoot))

        let (newRoot, newRootKey) = try CADatabaseTests.authority("Test Root G2", signedBy: nil)
        try fixture.database.startRotation([.init(certificate: newRoot, kind: .root, issuerSerial: nil, keyPEM: nil, role: .current)],
                                           crossSigned: fixture.root, now: Date())
        files = try view()
        #expect(files.files[CADirectory.rootCertificate] == (try newRoot.pemEncoded()))
        #expect(files.files[CADirectory.previousRoot] == (try fixture.root.pemEncoded()))
        #expect(files.files[CADirectory.trustBundle] == (try newRoot.pemEncoded()) + (try fixture.root.pemEncoded()))
        // the new root's key is not in the database: root.key is neither written nor removed
        #expect(files.files[CADirectory.rootKey] == nil && !files.absent.contains(CADirectory.rootKey))
        _ = newRootKey

        try fixture.database.finishRotation()
        files = try view()
        let stem = "\(CADirectory.retired)/\(fixture.root.serial.hex.prefix(12))-"
        #expect(files.files[stem + CADirectory.previousRoot] == (try fixture.root.pemEncoded()))
        #expect(files.files[stem + CADirectory.previousIntermediate] == (try fixture.intermediate.pemEncoded()))
        #expect(files.absent.contains(CADirectory.previousRoot) && files.absent.contains(CADirectory.crossSigned))
        #expect(files.files[CADirectory.trustBundle] == (try newRoot.pemEncoded()))
    }
}
