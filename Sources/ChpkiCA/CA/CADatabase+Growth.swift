import Foundation
import GRDB
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// The parts of `ca.db` that growth and retirement need: where a leaf came from (the inventory or a
/// one-off `issue server|client|admin`), the leaves still alive, and revocations with a reason each,
/// published as one CRL per issuing CA in one transaction.
extension CADatabase {
    /// v3: `origin` tells a one-off certificate from one the inventory implies: `issue --prune`
    /// retires certificates the inventory no longer names, and must never take a one-off for one.
    /// Rows written before it have NULL, read as "inventory".
    static func registerGrowthMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3-leaf-origin") { db in
            try db.execute(sql: "ALTER TABLE certificates ADD COLUMN origin TEXT CHECK (origin IS NULL OR origin IN ('inventory', 'one-off'))")
        }
    }

    static let oneOffOrigin = "one-off"

    /// Serials of the one-off leaves.
    public func oneOffSerials() throws -> Set<SerialNumber> {
        try read { db in
            let rows = try Row.fetchAll(db, CertificateRecord.select(Columns.serial).filter(Columns.origin == Self.oneOffOrigin))
            return Set(try rows.map { try Self.serial($0, Columns.serial) })
        }
    }

    /// Leaves a verifier would still accept: valid or superseded (never revoked), not yet expired.
    public func liveLeaves(now: Date) throws -> [IssuedCertificate] {
        try read { db in
            try Self.fetch(db, CertificateRecord.leaves.filter([CertificateStatus.valid, .superseded].contains(Columns.status)))
        }.filter { $0.notAfter > now }
    }

    /// The CA certificates (current or previous) that signed at least one leaf: each publishes a CRL.
    public func leafIssuers() throws -> Set<SerialNumber> {
        try read { db in
            let rows = try Row.fetchAll(db, CertificateRecord.leaves.select(Columns.issuerSerial).distinct().filter(Columns.issuerSerial != nil))
            return Set(try rows.map { try Self.serial($0, Columns.issuerSerial) })
        }
    }

    /// The latest time the CA recorded before this change: a certificate's creation, a revocation
    /// (other than those being made at `date`), the last CRL's signing. The CA's own measure of "now
    /// at least": a clock behind it has been set back.
    static func latestRecordedTime(_ db: Database, excludingRevocationsAt date: Date) throws -> Date? {
        let created = try Date.fetchOne(db, sql: "SELECT max(created_at) FROM certificates")
        let revoked = try Date.fetchOne(db, sql: "SELECT max(revoked_at) FROM certificates WHERE revoked_at != ?", arguments: [date])
        let signed = try meta(db, Meta.crlSignedAt).flatMap(RFC3339.parse)
        return [created, revoked, signed].compactMap { $0 }.max()
    }

    /// Revokes each serial with its own reason, takes the next CRL number and stores the CRLs that
    /// `sign` makes, one per issuer in `issuers` (crl.pem holds them all), in one transaction.
    @discardableResult
    public func revokeAndPublishCRLs(_ revocations: [(serial: SerialNumber, reason: RevocationReason)], at date: Date,
                                     issuers: [SerialNumber], sign: (SerialNumber, CRLInput) throws -> Data) throws -> SignedCRL {
        let revoked = revocations.isEmpty ? "" : "the revocation of \(Self.describe(revocations.map(\.serial))) and "
        return try change({ crl in "\(revoked)CRL number \(crl.number)" }) { db in
            for revocation in revocations {
                try db.execute(sql: """
                    UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?
                    WHERE serial = ? AND status != 'revoked'
                    """, arguments: [date, revocation.reason.indexName, revocation.serial.hex])
            }
            let number = (Int(try Self.meta(db, Meta.crlNumber) ?? "0") ?? 0) + 1
            let latest = try Self.latestRecordedTime(db, excludingRevocationsAt: date)
            var pem = Data()
            for issuer in issuers {
                let revoked = try Self.fetch(db, CertificateRecord.filter(Columns.status == CertificateStatus.revoked && Columns.issuerSerial == issuer.hex))
                pem += try sign(issuer, CRLInput(number: number, revoked: revoked, latestRecorded: latest))
            }
            try Self.setMeta(db, Meta.crlNumber, String(number))
            try Self.setMeta(db, Meta.crlSignedAt, RFC3339.format(date))
            try Self.setMeta(db, Meta.crlPEM, String(decoding: pem, as: UTF8.self))
            return SignedCRL(number: number, pem: pem)
        }
    }
}
