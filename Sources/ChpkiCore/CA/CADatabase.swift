import Foundation
import GRDB

/// `ca.db`: SQLite through GRDB in WAL mode, the single source of truth for serials, issued
/// certificates and keys, revocations and CRL numbers (SPEC §6).
public final class CADatabase {
    public static let fileName = "ca.db"
    let queue: DatabaseQueue

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(60)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        queue = try DatabaseQueue(path: path, configuration: configuration)
        try Self.migrator.migrate(queue)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "meta") { table in
                table.primaryKey("key", .text)
                table.column("value", .text).notNull()
            }
            try db.create(table: CertificateRecord.databaseTableName) { table in
                table.autoIncrementedPrimaryKey("id")
                table.column("serial", .text).notNull().unique()
                table.column("kind", .text).notNull()
                    .check(sql: "kind IN ('root', 'intermediate', 'server', 'client', 'admin')")
                table.column("host", .text)
                table.column("service", .text)
                table.column("name", .text)
                table.column("subject", .text).notNull()
                table.column("subject_oneline", .text).notNull()
                table.column("profile", .text)
                table.column("sans", .text).notNull().defaults(to: "[]")
                table.column("key_type", .text).notNull()
                table.column("issuer_serial", .text)
                table.column("not_before", .datetime).notNull()
                table.column("not_after", .datetime).notNull()
                table.column("status", .text).notNull().defaults(to: "valid")
                    .check(sql: "status IN ('valid', 'revoked', 'superseded')")
                table.column("revoked_at", .datetime)
                table.column("revocation_reason", .text)
                table.column("superseded_by", .text)
                table.column("certificate_pem", .text).notNull()
                table.column("private_key_pem", .text)
                table.column("created_at", .datetime).notNull()
            }
            // One valid certificate per identity: a second concurrent issuer cannot add a twin.
            try db.execute(sql: """
                CREATE UNIQUE INDEX one_valid_per_identity ON certificates
                    (kind, coalesce(host, ''), coalesce(service, ''), coalesce(name, ''))
                    WHERE status = 'valid' AND kind IN ('server', 'client', 'admin')
                """)
        }
        return migrator
    }

    /// Runs `body` in one EXCLUSIVE transaction: it commits whole or not at all.
    public func change<T>(_ body: (Database) throws -> T) throws -> T {
        try queue.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.exclusive) {
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        try queue.read(body)
    }

    public func allCertificates() throws -> [CertificateRecord] {
        try read { db in try CertificateRecord.order(Column("id")).fetchAll(db) }
    }

    /// Every valid leaf certificate, with its key.
    public func validLeaves() throws -> [CertificateRecord] {
        try read { db in
            try CertificateRecord.filter(Column("status") == CertificateRecord.Status.valid.rawValue)
                .filter(![CertificateRecord.Kind.root.rawValue, CertificateRecord.Kind.intermediate.rawValue].contains(Column("kind")))
                .fetchAll(db)
        }
    }

    /// Valid CA certificates (root, intermediate; two roots during a rotation).
    public func validAuthorities() throws -> [CertificateRecord] {
        try read { db in
            try CertificateRecord.filter(Column("status") == CertificateRecord.Status.valid.rawValue)
                .filter([CertificateRecord.Kind.root.rawValue, CertificateRecord.Kind.intermediate.rawValue].contains(Column("kind")))
                .order(Column("id")).fetchAll(db)
        }
    }

    /// The columns index.txt needs, for every certificate, without the PEMs.
    public func indexEntries() throws -> [OpenSSLIndex.Entry] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT kind, serial, status, not_after, revoked_at, revocation_reason, subject_oneline
                FROM certificates WHERE kind != 'root'
                """).map { row in
                OpenSSLIndex.Entry(serial: row["serial"], status: CertificateRecord.Status(rawValue: row["status"]) ?? .valid,
                                   notAfter: row["not_after"], revokedAt: row["revoked_at"],
                                   revocationReason: row["revocation_reason"], subjectOneLine: row["subject_oneline"])
            }
        }
    }

    /// Checkpoints the WAL into the main file and closes, so the database is one file again.
    public func close() throws {
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
        try queue.close()
    }

    // MARK: meta

    public static func setMeta(_ db: Database, _ key: String, _ value: String) throws {
        try db.execute(sql: "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       arguments: [key, value])
    }

    public static func meta(_ db: Database, _ key: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
    }
}
