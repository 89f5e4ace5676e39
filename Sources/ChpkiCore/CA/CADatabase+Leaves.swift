import Foundation
import GRDB

/// Recording issued leaves: every value of a row is encoded where the leaf was signed (its JSON
/// columns, its dates, its sealed key), on the signing threads, so that the one thread writing
/// `ca.db` only binds values to a prepared statement and steps it, while the signing goes on.
extension CADatabase {
    /// A signed leaf to record.
    public struct NewLeaf: Sendable {
        public var signed: SignedCertificate
        public var profile: CertificateProfile
        public var issuerSerial: SerialNumber
        public var key: StoredKey
        /// The valid certificate of the same identity this one replaces.
        public var supersedes: SerialNumber?
        /// A one-off `issue server|client|admin`, which `issue --prune` never retires.
        public var oneOff = false
    }

    /// A leaf's row, encoded and ready to insert.
    public struct LeafRow: Sendable {
        public let serial: SerialNumber
        let supersedes: SerialNumber?
        /// In the order of `insertLeafSQL`'s columns.
        let values: [DatabaseValue]

        public init(_ leaf: NewLeaf, now: Date) throws {
            let signed = leaf.signed
            let identity = leaf.profile.identity
            var clearKey: String?
            var sealedKey: Data?
            switch leaf.key {
            case let .clear(bytes): clearKey = bytes.withBytes { String(decoding: $0, as: UTF8.self) }
            case let .sealed(box): sealedKey = box
            }
            serial = signed.serial
            supersedes = leaf.supersedes
            values = [
                signed.serial.hex.databaseValue, identity.kind.rawValue.databaseValue, identity.host.databaseValue,
                identity.service.databaseValue, identity.name.databaseValue, signed.subject.rfc4514.databaseValue,
                signed.subjectOneLine.databaseValue, leaf.profile.encodedEssentials().databaseValue,
                try CADatabase.json(signed.subjectAlternativeNames.map(\.description)).databaseValue,
                leaf.profile.keyType.rawValue.databaseValue, leaf.issuerSerial.hex.databaseValue,
                signed.notBefore.databaseValue, signed.notAfter.databaseValue, CertificateStatus.valid.rawValue.databaseValue,
                signed.pem.databaseValue, clearKey.databaseValue, sealedKey.databaseValue, now.databaseValue,
                (leaf.oneOff ? CADatabase.oneOffOrigin : nil).databaseValue,
            ]
        }
    }

    static let insertLeafSQL = """
        INSERT INTO certificates (serial, kind, host, service, name, subject, subject_oneline, profile, sans, key_type,
                                  issuer_serial, not_before, not_after, status, certificate_pem, private_key_pem, key_sealed,
                                  created_at, origin)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    static let supersedeSQL = "UPDATE certificates SET status = ?, superseded_by = ? WHERE serial = ? AND status = ?"

    /// Inserts leaf rows inside the caller's transaction, through two statements prepared once.
    final class LeafRecorder {
        private let insert: Statement
        private let supersede: Statement
        private(set) var recorded: [SerialNumber] = []

        init(_ db: Database) throws {
            insert = try db.makeStatement(sql: CADatabase.insertLeafSQL)
            supersede = try db.makeStatement(sql: CADatabase.supersedeSQL)
        }

        /// The valid certificate it replaces becomes superseded first: one valid leaf per identity.
        func record(_ row: LeafRow) throws {
            if let previous = row.supersedes {
                try supersede.execute(arguments: [CertificateStatus.superseded.rawValue, row.serial.hex, previous.hex,
                                                  CertificateStatus.valid.rawValue])
            }
            try insert.execute(arguments: StatementArguments(row.values))
            recorded.append(row.serial)
        }
    }

    /// issue / renew: records the leaves `produce` hands to its `record` function (as they are
    /// signed), superseding what each replaces, in ONE exclusive transaction with `authority` (a new
    /// issuing intermediate, on growth) first: a run killed at any point, or a failure of `produce`,
    /// leaves the CA as it was.
    public func recordIssued(addingAuthority authority: NewAuthority? = nil, now: Date,
                             _ produce: (_ record: (LeafRow) throws -> Void) throws -> Void) throws {
        let intermediate = authority.map { "the intermediate \($0.certificate.serial.hex) and " } ?? ""
        try change({ serials in "\(intermediate)certificates \(Self.describe(serials))" }) { db in
            if let authority { try Self.insert(authority, db: db, now: now) }
            let recorder = try LeafRecorder(db)
            try produce(recorder.record)
            return recorder.recorded
        }
    }

    /// The same for leaves already signed.
    public func recordIssued(_ batch: [NewLeaf], addingAuthority authority: NewAuthority? = nil, now: Date) throws {
        let rows = try batch.map { try LeafRow($0, now: now) }
        try recordIssued(addingAuthority: authority, now: now) { record in
            for row in rows { try record(row) }
        }
    }
}
