import Foundation
import GRDB
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// A CA made by the first release (its ca.db schema, keys and CRL only in files) opened by this
/// one: the session takes the exclusive lock even to read, migrates, adopts the files into ca.db
/// in one step, and then works as any CA; a first-release CA whose root.pem is gone is refused.
@Suite("First-release CA adoption")
struct FirstReleaseCATests {
    typealias S = CATestSupport

    /// A CA directory as the first release left it: the files of a real CA, and a v1 ca.db holding
    /// its two CA certificates without their keys.
    static func firstReleaseCA() throws -> (CADirectory, root: Certificate, intermediate: Certificate) {
        let directory = try S.newCA()
        let root = try Certificate(pem: S.read(directory.file(CADirectory.rootCertificate))!)
        let intermediate = try Certificate(pem: S.read(directory.file(CADirectory.intermediateCertificate))!)
        let path = directory.file(CADatabase.fileName)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
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
                """)
            for (certificate, kind, issuer) in [(root, "root", nil as SerialNumber?), (intermediate, "intermediate", root.serial)] {
                try db.execute(sql: """
                    INSERT INTO certificates (serial, kind, subject, subject_oneline, key_type, issuer_serial, not_before, not_after,
                                              certificate_pem, created_at)
                    VALUES (?, ?, ?, ?, 'ec-p256', ?, ?, ?, ?, ?)
                    """, arguments: [certificate.serial.hex, kind, certificate.subject.rfc4514, certificate.subjectOneLine, issuer?.hex,
                                     certificate.notBefore, certificate.notAfter,
                                     String(decoding: try certificate.pemEncoded(), as: UTF8.self), Date()])
            }
        }
        try migrator.migrate(queue)
        try queue.close()
        return (directory, root, intermediate)
    }

    @Test("opened to read, a first-release CA is migrated and its files adopted; keys and CRL move into ca.db")
    func adoptedOnOpen() throws {
        let (directory, root, intermediate) = try Self.firstReleaseCA()
        #expect(CADatabase.needsMigration(path: directory.file(CADatabase.fileName)))
        let rootKey = S.read(directory.file(CADirectory.rootKey))
        let crl = S.read(directory.file(CADirectory.crl))
        try S.withSession(directory, .read) { session throws in
            #expect(session.root.serial == root.serial)
            #expect(session.issuing.serial == intermediate.serial)
            #expect(try !session.database.publishedState().legacyFilesPending)
            #expect(try session.database.authorityKeyPEM(serial: root.serial) == rootKey)
            #expect(try session.database.authorityKeyPEM(serial: intermediate.serial) != nil)
            #expect(try session.database.publishedState().crlPEM == crl)
        }
        #expect(!CADatabase.needsMigration(path: directory.file(CADatabase.fileName)))
        // the files are views of what was adopted: the same bytes
        #expect(S.read(directory.file(CADirectory.rootKey)) == rootKey)
        #expect(S.read(directory.file(CADirectory.crl)) == crl)
    }

    @Test("an adopted CA issues, and its leaves verify with openssl")
    func issuesAfterAdoption() throws {
        let (directory, _, _) = try Self.firstReleaseCA()
        let issued = try S.issue(directory, try S.inventory())
        #expect(!issued.isEmpty)
        let work = try S.temporaryDirectory("first-release")
        let leaf = try S.file(issued[0].signed.pem, named: "leaf.pem", in: work)
        #expect(try S.opensslVerifies(leaf: leaf, trusted: directory.file(CADirectory.rootCertificate),
                                      untrusted: directory.file(CADirectory.intermediateCertificate)))
    }

    @Test("a reader of a first-release CA needs the exclusive lock: it waits for another reader first")
    func readerUpgrades() throws {
        let (directory, _, _) = try Self.firstReleaseCA()
        let holder = try LockHolder(directory.path, shared: true)
        let open = Background { try S.withSession(directory, .read) { session in session.root.serial } }
        #expect(open.wait(0.5) == nil, "migrated a CA another process is reading")
        #expect(CADatabase.needsMigration(path: directory.file(CADatabase.fileName)))
        holder.release()
        guard case .success? = open.wait(30) else {
            Issue.record("the reader never opened the first-release CA")
            return
        }
    }

    @Test("a first-release CA without its root.pem is refused naming root.pem; its files are left alone")
    func missingRootFile() throws {
        let (directory, root, _) = try Self.firstReleaseCA()
        try FileManager.default.removeItem(atPath: directory.file(CADirectory.rootCertificate))
        let key = S.read(directory.file(CADirectory.rootKey))
        let error = S.refusal { _ = try S.open(directory, .read) }
        #expect(error?.kind == .refused)
        #expect(error?.file == directory.file(CADirectory.rootCertificate))
        #expect(S.read(directory.file(CADirectory.rootKey)) == key)
        // still pending: the next run adopts the files once root.pem is back
        let database = try CADatabase(path: directory.file(CADatabase.fileName))
        #expect(try database.publishedState().legacyFilesPending)
        try database.close()
        try root.pemEncoded().write(to: URL(fileURLWithPath: directory.file(CADirectory.rootCertificate)))
        try S.withSession(directory, .read) { session throws in
            #expect(session.root.serial == root.serial)
            #expect(try session.database.authorityKeyPEM(serial: root.serial) == key)
        }
    }

    @Test("a root.pem that is not one of ca.db's CA certificates is refused too")
    func foreignRootFile() throws {
        let (directory, _, _) = try Self.firstReleaseCA()
        let other = try S.newCA()
        for name in [CADirectory.rootCertificate, CADirectory.intermediateCertificate] {
            try S.read(other.file(name))!.write(to: URL(fileURLWithPath: directory.file(name)))
        }
        #expect(S.refusal { _ = try S.open(directory, .read) }?.file == directory.file(CADirectory.rootCertificate))
    }
}
