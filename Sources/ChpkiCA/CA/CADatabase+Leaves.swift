import Foundation
import GRDB
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

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
        /// In the order of `insertLeafSQL`'s columns; built where the row is (on a signing thread),
        /// so that the one thread that records only binds them.
        let arguments: StatementArguments

        public init(_ leaf: NewLeaf, now: Date) throws {
            try self.init(leaf, createdAt: CADatabase.storedDate(now))
        }

        /// `createdAt` is the batch's one time, encoded once (`storedDate`).
        init(_ leaf: NewLeaf, createdAt: DatabaseValue) throws {
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
            let subjectText = signed.subject.rfc4514
            let sanTexts = signed.subjectAlternativeNames.map(\.description)
            let essentials = leaf.profile.essentials(subjectText: subjectText, sanTexts: sanTexts)
            let values: [DatabaseValue] = [
                signed.serial.hex.databaseValue, identity.kind.rawValue.databaseValue, identity.host.databaseValue,
                identity.service.databaseValue, identity.name.databaseValue, subjectText.databaseValue,
                signed.subjectOneLine.databaseValue, try CADatabase.essentialsJSON(essentials).databaseValue,
                try CADatabase.stringsJSON(sanTexts).databaseValue,
                leaf.profile.keyType.rawValue.databaseValue, leaf.issuerSerial.hex.databaseValue,
                CADatabase.storedDate(signed.notBefore), CADatabase.storedDate(signed.notAfter), CertificateStatus.valid.rawValue.databaseValue,
                signed.pem.databaseValue, clearKey.databaseValue, sealedKey.databaseValue, createdAt,
                (leaf.oneOff ? CADatabase.oneOffOrigin : nil).databaseValue,
            ]
            arguments = StatementArguments(values)
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
            try insert.execute(arguments: row.arguments)
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
        _ = try withoutAutocheckpoint {
            try change({ serials in "\(intermediate)certificates \(Self.describe(serials))" }) { db in
                if let authority { try Self.insert(authority, db: db, now: now) }
                let recorder = try LeafRecorder(db)
                try produce(recorder.record)
                return recorder.recorded
            }
        }
    }

    /// The same for leaves already signed.
    public func recordIssued(_ batch: [NewLeaf], addingAuthority authority: NewAuthority? = nil, now: Date) throws {
        let rows = try batch.map { try LeafRow($0, now: now) }
        try recordIssued(addingAuthority: authority, now: now) { record in
            for row in rows { try record(row) }
        }
    }

    // MARK: - Encoding a row without Foundation's encoders (their cost per leaf was a third of the writer's)

    /// A date as GRDB stores it ("yyyy-MM-dd HH:mm:ss.SSS", UTC). Whole seconds (every certificate
    /// date) are written by hand; anything else goes through GRDB's own formatter.
    static func storedDate(_ date: Date) -> DatabaseValue {
        let seconds = date.timeIntervalSince1970
        guard seconds == seconds.rounded(.down), abs(seconds) < 1e12 else { return date.databaseValue }
        let time = UTCFields(wholeSeconds: Int(seconds))
        let two = UTCFields.twoDigits
        return "\(time.fourDigitYear)-\(two(time.month))-\(two(time.day)) \(two(time.hour)):\(two(time.minute)):\(two(time.second)).000".databaseValue
    }

    /// `[String]` as JSONEncoder writes it, by hand when every string is plain (printable ASCII
    /// without quote, backslash or slash: what SANs are); otherwise through JSONEncoder.
    static func stringsJSON(_ strings: [String]) throws -> String {
        guard strings.allSatisfy(isPlainJSON) else { return try json(strings) }
        return "[" + strings.map { "\"\($0)\"" }.joined(separator: ",") + "]"
    }

    /// The profile's essentials as `json(_:)` (sorted keys) writes them, by hand when plain.
    static func essentialsJSON(_ essentials: CertificateProfile.Essentials) throws -> String {
        guard isPlainJSON(essentials.subject), isPlainJSON(essentials.key) else { return try json(essentials) }
        return "{\"eku\":\(try stringsJSON(essentials.eku)),\"key\":\"\(essentials.key)\",\"sans\":\(try stringsJSON(essentials.sans)),"
            + "\"subject\":\"\(essentials.subject)\"}"
    }

    private static func isPlainJSON(_ text: String) -> Bool {
        text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") && $0 != UInt8(ascii: "/") }
    }
}
