import Foundation
import GRDB
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// `ca.db`: SQLite through GRDB in WAL mode, the single source of truth of the CA (SPEC §6): every
/// certificate (CA ones with their encrypted keys and roles), issued leaf keys, revocations, the
/// signed CRL and its number. The only place that knows the schema and speaks SQL: it hands out
/// typed `IssuedCertificate`s and offers each change of state as one method, one exclusive
/// transaction each. The files of the CA directory are views of it (`CAFiles`).
public final class CADatabase {
    public static let fileName = "ca.db"
    let queue: DatabaseQueue
    package let path: String
    /// What the last change of this run committed ("certificates 0A.., 1B.."), for a failure after
    /// the commit to name (`CAFiles.write(_:to:committed:)`).
    private(set) var lastCommitted: String?

    /// Opens the database at `path` and brings its schema up to date (in place; the caller holds the lock).
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(60)
        configuration.prepareDatabase { db in
            // A leaf's row is about 2.2 KB: a 4 KB page holds one, a 16 KB page seven, so a batch
            // writes half the bytes (twice: to the WAL, then to ca.db). Only a new file takes it;
            // an existing CA keeps its page size (WAL mode cannot change it).
            try db.execute(sql: "PRAGMA page_size = 16384")
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // A batch of 10,000 leaves is about 20 MB of pages in one transaction: with SQLite's
            // default 2 MB cache it spills them to the WAL, and rewrites some, before the commit.
            try db.execute(sql: "PRAGMA cache_size = -65536")
        }
        self.path = path
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            try Self.migrator.migrate(queue)
        } catch let error as DatabaseError {
            throw Self.storageFailure(error, path: path, doing: "cannot open it")
                ?? ChpkiError.input(.caCorrupt, file: path, field: nil, "not a chpki CA database: \(error.message ?? error.description)")
        }
    }

    /// A full disk or an I/O error, worded as such and naming the file (SQLite's own text says
    /// neither: "disk I/O error", "SQLite error 13 ... COMMIT TRANSACTION"). SQLite reports a write
    /// that found no room as either FULL or IOERR (creating the -wal/-shm files): an I/O error on a
    /// filesystem with (almost) no room left is a full disk. Nil for other errors.
    static func storageFailure(_ error: DatabaseError, path: String, doing: String) -> ChpkiError? {
        let detail = "SQLite: \(error.message ?? "\(error.resultCode)")"
        let full = ChpkiError.input(.systemNoSpace, file: path, field: nil, "\(doing): no space left on device (\(detail))")
        switch error.resultCode.primaryResultCode {
        case .SQLITE_FULL: return full
        case .SQLITE_IOERR:
            if let available = FileOperations.availableBytes(Path.parent(of: path)), available < nearlyFull { return full }
            return ChpkiError.input(.systemIOError, file: path, field: nil, "\(doing): I/O error, is the disk failing? (\(detail))")
        default: return nil
        }
    }

    /// Less room than this and an I/O error is taken for a full disk: SQLite writes pages of 4 KiB
    /// and a WAL index of 32 KiB.
    static let nearlyFull = 64 * 1024

    /// Whether opening the file at `path` would change its schema (a shared-lock reader must then upgrade).
    public static func needsMigration(path: String) -> Bool {
        guard let queue = try? DatabaseQueue(path: path, configuration: { var c = Configuration(); c.readonly = true; return c }()) else {
            return true
        }
        defer { try? queue.close() }
        return (try? queue.read { db in try !migrator.hasCompletedMigrations(db) }) ?? true
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        // v1: the schema of the first release (main at 3e1229e). Kept verbatim: old ca.db files have it.
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE certificates (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    serial TEXT NOT NULL UNIQUE,
                    kind TEXT NOT NULL CHECK (kind IN ('root', 'intermediate', 'server', 'client', 'admin')),
                    host TEXT, service TEXT, name TEXT,
                    subject TEXT NOT NULL, subject_oneline TEXT NOT NULL, profile TEXT,
                    sans TEXT NOT NULL DEFAULT '[]', key_type TEXT NOT NULL, issuer_serial TEXT,
                    not_before DATETIME NOT NULL, not_after DATETIME NOT NULL,
                    status TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid', 'revoked', 'superseded')),
                    revoked_at DATETIME, revocation_reason TEXT, superseded_by TEXT,
                    certificate_pem TEXT NOT NULL, private_key_pem TEXT, created_at DATETIME NOT NULL);
                CREATE UNIQUE INDEX one_valid_per_identity ON certificates
                    (kind, coalesce(host, ''), coalesce(service, ''), coalesce(name, ''))
                    WHERE status = 'valid' AND kind IN ('server', 'client', 'admin');
                """)
        }
        // v2: CA certificates become first-class (their role and encrypted key live here, the files
        // are views), leaf keys can be sealed (AES-256-GCM, `LeafKeyVault`).
        migrator.registerMigration("v2-authorities-and-sealed-keys") { db in
            try db.execute(sql: """
                ALTER TABLE certificates ADD COLUMN authority_role TEXT
                    CHECK (authority_role IS NULL OR authority_role IN ('current', 'previous', 'retired'));
                ALTER TABLE certificates ADD COLUMN authority_key_pem TEXT;
                ALTER TABLE certificates ADD COLUMN key_sealed BLOB;
                CREATE INDEX certificates_by_issuer ON certificates (issuer_serial);
                UPDATE certificates SET authority_role = CASE status WHEN 'valid' THEN 'current' ELSE 'retired' END
                    WHERE kind IN ('root', 'intermediate');
                """)
            // A database of the first release still has its CA keys and CRL in files: `CASession`
            // imports them under the lock (they are files, so not here).
            let hasAuthorities = try Int.fetchOne(db, sql: "SELECT count(*) FROM certificates WHERE kind IN ('root', 'intermediate')") ?? 0
            if hasAuthorities > 0 { try setMeta(db, Meta.legacyFilesPending, "1") }
        }
        registerGrowthMigrations(&migrator)
        return migrator
    }

    /// Runs `body` in one EXCLUSIVE transaction: it commits whole or not at all.
    /// `committed` describes the change for a failure after the commit (`lastCommitted`).
    @discardableResult
    package func change<T>(_ committed: (T) -> String, _ body: (Database) throws -> T) throws -> T {
        let result: T
        do {
            result = try queue.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.exclusive) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch let error as DatabaseError {
            throw Self.storageFailure(error, path: path, doing: "nothing was committed") ?? error
        }
        lastCommitted = committed(result)
        return result
    }

    /// Serials as a change's description names them.
    package static func describe(_ serials: [SerialNumber]) -> String {
        serials.map(\.hex).joined(separator: ", ")
    }

    package func read<T>(_ body: (Database) throws -> T) throws -> T {
        try queue.read(body)
    }

    /// Copies what the WAL holds into the main file (PASSIVE: it never waits for a reader). A
    /// commit does this itself (SQLite's autocheckpoint) except a batch of leaves' (`recordIssued`),
    /// whose 10 MB are left for `CASession.publish` to copy while it writes the files. A run killed
    /// before loses nothing: the WAL is durable, and the next commit copies it. Runs on another
    /// thread, in `group`; the caller must not use the database until the group is done.
    package func checkpoint(in group: DispatchGroup) {
        let queue = queue
        DispatchQueue.global(qos: .userInitiated).async(group: group) {
            try? queue.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(PASSIVE)") }
        }
    }

    /// Runs `body` with the commit's own checkpoint off (see `checkpoint(in:)`).
    package func withoutAutocheckpoint<T>(_ body: () throws -> T) throws -> T {
        try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
        defer { try? queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.autocheckpointPages)") } }
        return try body()
    }

    /// SQLite's default: a commit that leaves more pages than this in the WAL copies them.
    static let autocheckpointPages = 1000

    /// Checkpoints the WAL into the main file and closes, so the database is one file again.
    public func close() throws {
        try queue.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
        try queue.close()
    }

    // MARK: - Reading

    typealias Columns = CertificateRecord.Columns

    /// Every certificate, in the order they were recorded.
    public func certificates() throws -> [IssuedCertificate] {
        try read { db in try Self.fetch(db, CertificateRecord.all()) }
    }

    /// Every valid leaf certificate (no key).
    public func validLeaves() throws -> [IssuedCertificate] {
        try read { db in try Self.fetch(db, CertificateRecord.leaves.filter(Columns.status == CertificateStatus.valid)) }
    }

    /// Every CA certificate (roots and intermediates, whatever their role).
    public func authorities() throws -> [IssuedCertificate] {
        try read { db in try Self.fetch(db, CertificateRecord.authorities) }
    }

    public func certificate(serial: SerialNumber) throws -> IssuedCertificate? {
        try read { db in try Self.fetch(db, CertificateRecord.filter(Columns.serial == serial.hex)).first }
    }

    /// The stored (possibly encrypted) PKCS#8 PEM of a CA key; nil when the key is not in the database.
    public func authorityKeyPEM(serial: SerialNumber) throws -> Data? {
        try read { db in
            try String.fetchOne(db, CertificateRecord.select(Columns.authorityKeyPEM).filter(Columns.serial == serial.hex))
        }.map { Data($0.utf8) }
    }

    /// An intermediate's sealed key copy (`AuthorityKey.sealedCopy`); nil for a CA made before it.
    public func authoritySealedKey(serial: SerialNumber) throws -> Data? {
        try read { db in
            try Data.fetchOne(db, CertificateRecord.select(Columns.keySealed)
                .filter(Columns.serial == serial.hex && Columns.kind == CertificateKind.intermediate))
        }
    }

    /// How a leaf key is stored: in clear (a `--no-passphrase` CA, or not yet migrated) or sealed.
    public enum StoredKey: Sendable {
        case clear(SecretBytes)
        case sealed(Data)
    }

    /// The stored keys of the given leaves; a serial without a key is absent.
    public func leafKeys(_ serials: [SerialNumber]) throws -> [SerialNumber: StoredKey] {
        guard !serials.isEmpty else { return [:] }
        return try read { db in
            var result: [SerialNumber: StoredKey] = [:]
            // Chunks keep the statement under SQLite's parameter limit.
            for chunk in stride(from: 0, to: serials.count, by: 500).map({ Array(serials[$0..<min($0 + 500, serials.count)]) }) {
                let request = CertificateRecord.select(Columns.serial, Columns.privateKeyPEM, Columns.keySealed)
                    .filter(chunk.map(\.hex).contains(Columns.serial))
                let rows = try Row.fetchCursor(db, request)
                while let row = try rows.next() {
                    let serial = try Self.serial(row, Columns.serial)
                    if let sealed: Data = try? row.decode(forColumn: Columns.keySealed.name) {
                        result[serial] = .sealed(sealed)
                    } else if var clear: Data = try? row.decode(forColumn: Columns.privateKeyPEM.name) {
                        result[serial] = .clear(SecretBytes(consuming: &clear))
                    }
                }
            }
            return result
        }
    }

    /// How many leaf keys are still stored in clear.
    public func clearLeafKeyCount() throws -> Int {
        try read { db in try CertificateRecord.filter(Columns.privateKeyPEM != nil).fetchCount(db) }
    }

    /// The columns index.txt needs, for every certificate but self-signed roots.
    public func indexEntries() throws -> [OpenSSLIndex.Entry] {
        try read { db in
            try IndexRecord.filter(!(Columns.kind == CertificateKind.root && Columns.issuerSerial == nil)).fetchAll(db).map(\.entry)
        }
    }

    /// The state a CRL and the derived files are made from.
    public struct PublishedState: Sendable {
        public var crlNumber: Int
        public var crlPEM: Data?
        public var crossSignedPEM: Data?
        public var leafKeyWrap: LeafKeyVault.Wrap?
        public var legacyFilesPending: Bool
    }

    public func publishedState() throws -> PublishedState {
        try read { db in
            PublishedState(
                crlNumber: Int(try Self.meta(db, Meta.crlNumber) ?? "0") ?? 0,
                crlPEM: try Self.meta(db, Meta.crlPEM).map { Data($0.utf8) },
                crossSignedPEM: try Self.meta(db, Meta.crossSignedPEM).map { Data($0.utf8) },
                leafKeyWrap: try Self.meta(db, Meta.leafKeyWrap).flatMap { try? JSONDecoder().decode(LeafKeyVault.Wrap.self, from: Data($0.utf8)) },
                legacyFilesPending: try Self.meta(db, Meta.legacyFilesPending) != nil)
        }
    }

    // MARK: - Changes (one exclusive transaction each)

    /// A CA certificate to record, with its (encrypted) key.
    public struct NewAuthority: Sendable {
        public var certificate: Certificate
        public var kind: CertificateKind
        public var issuerSerial: SerialNumber?
        public var keyPEM: Data?
        /// An intermediate's key sealed under the leaf-key data key (`AuthorityKey.sealedCopy`).
        public var sealedKey: Data?
        public var role: AuthorityRole

        public init(certificate: Certificate, kind: CertificateKind, issuerSerial: SerialNumber?, keyPEM: Data?,
                    sealedKey: Data? = nil, role: AuthorityRole) {
            self.certificate = certificate
            self.kind = kind
            self.issuerSerial = issuerSerial
            self.keyPEM = keyPEM
            self.sealedKey = sealedKey
            self.role = role
        }
    }

    /// init-ca: the CA certificates, the first CRL, the leaf-key wrap; into an empty database.
    public func initialize(authorities: [NewAuthority], crl: SignedCRL, leafKeyWrap: LeafKeyVault.Wrap?, now: Date) throws {
        try change({ _ in "the new CA (\(Self.describe(authorities.map(\.certificate.serial))))" }) { db in
            for authority in authorities { try Self.insert(authority, db: db, now: now) }
            try Self.setMeta(db, Meta.crlNumber, String(crl.number))
            try Self.setMeta(db, Meta.crlPEM, String(decoding: crl.pem, as: UTF8.self))
            if let leafKeyWrap { try Self.setMeta(db, Meta.leafKeyWrap, try Self.json(leafKeyWrap)) }
            try Self.setMeta(db, "created_at", RFC3339.format(now))
        }
    }

    /// A CA certificate added to a running CA (a new issuing intermediate).
    public func recordAuthority(_ authority: NewAuthority, now: Date) throws {
        try change({ _ in "the CA certificate \(authority.certificate.serial.hex)" }) { db in try Self.insert(authority, db: db, now: now) }
    }

    /// A CRL signed from the revoked set, with its number.
    public struct SignedCRL: Sendable {
        public var number: Int
        public var pem: Data
        public init(number: Int, pem: Data) {
            self.number = number
            self.pem = pem
        }
    }

    /// The revoked certificates a CRL of `issuer` lists.
    public struct CRLInput: Sendable {
        public var number: Int
        public var revoked: [IssuedCertificate]
        /// The latest time this CA recorded (a certificate, a revocation, a CRL): a CRL's nextUpdate must be after it.
        public var latestRecorded: Date?
    }

    /// revoke (with `serials`) or crl (without) for a CA with one issuer: `revokeAndPublishCRLs`
    /// (CADatabase+Growth) with one reason and one CRL, signed by `sign` inside the transaction.
    @discardableResult
    public func revokeAndPublish(_ serials: [SerialNumber], at date: Date, reason: RevocationReason, issuer: SerialNumber,
                                 sign: (CRLInput) throws -> Data) throws -> SignedCRL {
        try revokeAndPublishCRLs(serials.map { ($0, reason) }, at: date, issuers: [issuer]) { _, input in try sign(input) }
    }

    /// rotate-ca: the current authorities become previous, the new ones current, the cross-certificate stored.
    public func startRotation(_ authorities: [NewAuthority], crossSigned: Certificate, now: Date) throws {
        try change({ _ in "the rotation to the new CA certificates \(Self.describe(authorities.map(\.certificate.serial)))" }) { db in
            try CertificateRecord.filter(Columns.authorityRole == AuthorityRole.current).updateAll(db, Columns.authorityRole.set(to: AuthorityRole.previous))
            for authority in authorities { try Self.insert(authority, db: db, now: now) }
            try Self.setMeta(db, Meta.crossSignedPEM, String(decoding: try crossSigned.pemEncoded(), as: UTF8.self))
            try Self.setMeta(db, Meta.rotationStartedAt, RFC3339.format(now))
        }
    }

    /// rotate-ca --finish: the previous authorities are retired (superseded), the cross-certificate dropped.
    public func finishRotation() throws {
        try change({ _ in "the retirement of the previous root" }) { db in
            try CertificateRecord.filter(Columns.authorityRole == AuthorityRole.previous)
                .updateAll(db, Columns.authorityRole.set(to: AuthorityRole.retired), Columns.status.set(to: CertificateStatus.superseded))
            try db.execute(sql: "DELETE FROM meta WHERE key IN (?, ?)", arguments: [Meta.crossSignedPEM, Meta.rotationStartedAt])
        }
    }

    /// Retires one CA certificate (an intermediate no longer needed).
    public func retire(_ serial: SerialNumber) throws {
        try change({ _ in "the retirement of \(serial.hex)" }) { db in
            try CertificateRecord.authorities.filter(Columns.serial == serial.hex)
                .updateAll(db, Columns.authorityRole.set(to: AuthorityRole.retired), Columns.status.set(to: CertificateStatus.superseded))
        }
    }

    /// Seals every leaf key stored in clear, and stores the wrap of the data key (if new), in one transaction.
    public func sealClearLeafKeys(wrap: LeafKeyVault.Wrap, seal: (SecretBytes, SerialNumber) throws -> Data) throws -> Int {
        try change({ count in "\(count) leaf keys sealed" }) { db in
            try Self.setMeta(db, Meta.leafKeyWrap, try Self.json(wrap))
            let rows = try Row.fetchAll(db, CertificateRecord.select(Columns.serial, Columns.privateKeyPEM).filter(Columns.privateKeyPEM != nil))
            for row in rows {
                let serial = try Self.serial(row, Columns.serial)
                // A key left in clear because it did not read would stay readable to anyone with ca.db.
                guard var clear: Data = try? row.decode(forColumn: Columns.privateKeyPEM.name) else {
                    throw ChpkiError.input(.caCorrupt, file: Self.fileName, field: "certificates.serial=\(serial.hex)", "the private_key_pem column does not decode")
                }
                let sealed = try seal(SecretBytes(consuming: &clear), serial)
                try db.execute(sql: "UPDATE certificates SET key_sealed = ?, private_key_pem = NULL WHERE serial = ?",
                               arguments: [sealed, serial.hex])
            }
            return rows.count
        }
    }

    /// What a first-release CA directory held in files, adopted into the database (one transaction).
    public struct LegacyFiles: Sendable {
        public var roles: [SerialNumber: AuthorityRole]
        public var keys: [SerialNumber: Data]
        public var crlPEM: Data?
        public var crossSignedPEM: Data?
    }

    public func adoptLegacyFiles(_ files: LegacyFiles) throws {
        try change({ _ in "the adoption of the first-release CA files" }) { db in
            try CertificateRecord.authorities.updateAll(db, Columns.authorityRole.set(to: AuthorityRole.retired))
            for (serial, role) in files.roles {
                // A retired one keeps its status; any other role is a valid CA certificate.
                let row = CertificateRecord.filter(Columns.serial == serial.hex)
                if role == .retired {
                    try row.updateAll(db, Columns.authorityRole.set(to: role))
                } else {
                    try row.updateAll(db, Columns.authorityRole.set(to: role), Columns.status.set(to: CertificateStatus.valid))
                }
            }
            for (serial, key) in files.keys {
                try db.execute(sql: "UPDATE certificates SET authority_key_pem = ? WHERE serial = ?",
                               arguments: [String(decoding: key, as: UTF8.self), serial.hex])
            }
            if let crl = files.crlPEM { try Self.setMeta(db, Meta.crlPEM, String(decoding: crl, as: UTF8.self)) }
            if let cross = files.crossSignedPEM { try Self.setMeta(db, Meta.crossSignedPEM, String(decoding: cross, as: UTF8.self)) }
            try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [Meta.legacyFilesPending])
        }
    }

    // MARK: - Rows

    enum Meta {
        static let crlNumber = "crl_number"
        static let crlPEM = "crl_pem"
        static let crossSignedPEM = "cross_signed_pem"
        static let rotationStartedAt = "rotation_started_at"
        static let leafKeyWrap = "leaf_key_wrap"
        static let legacyFilesPending = "legacy_files_pending"
        static let crlSignedAt = "crl_signed_at"
    }

    static func setMeta(_ db: Database, _ key: String, _ value: String) throws {
        try db.execute(sql: "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       arguments: [key, value])
    }

    static func meta(_ db: Database, _ key: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
    }

    package static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// The certificates `request` selects, in the order they were recorded.
    static func fetch(_ db: Database, _ request: QueryInterfaceRequest<CertificateRecord>) throws -> [IssuedCertificate] {
        try request.order(Columns.id).fetchAll(db).map(\.certificate)
    }

    package static func insert(_ authority: NewAuthority, db: Database, now: Date) throws {
        let certificate = authority.certificate
        try db.execute(sql: """
            INSERT INTO certificates (serial, kind, subject, subject_oneline, sans, key_type, issuer_serial, not_before, not_after,
                                      status, certificate_pem, created_at, authority_role, authority_key_pem, key_sealed)
            VALUES (?, ?, ?, ?, '[]', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [certificate.serial.hex, authority.kind.rawValue, certificate.subject.rfc4514, certificate.subjectOneLine,
                             certificate.keyType?.rawValue ?? certificate.keyDescription, authority.issuerSerial?.hex,
                             certificate.notBefore, certificate.notAfter, (authority.role == .retired ? CertificateStatus.superseded : .valid).rawValue,
                             String(decoding: try certificate.pemEncoded(), as: UTF8.self), now, authority.role.rawValue,
                             authority.keyPEM.map { String(decoding: $0, as: UTF8.self) }, authority.sealedKey])
    }
}
