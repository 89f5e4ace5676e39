import Foundation
import GRDB

/// Signs the CA's CRL from the database: every revoked certificate, the next cRLNumber, and writes
/// `crl.pem` atomically. The number is taken and stored in the same transaction as `changes`.
public enum CRLPublisher {
    public static let defaultDays = 30

    /// Runs `changes` and takes the next CRL number in one exclusive transaction, then signs and
    /// writes the CRL and index.txt. Returns the CRL number.
    @discardableResult
    public static func publish(_ authority: CertificateAuthority, signer: Signer, now: Date, days: Int = defaultDays,
                               changes: (Database) throws -> Void = { _ in }) throws -> Int {
        let (number, revoked) = try authority.database.change { db -> (Int, [CertificateRecord]) in
            try changes(db)
            let number = (Int(try CADatabase.meta(db, "crl_number") ?? "0") ?? 0) + 1
            try CADatabase.setMeta(db, "crl_number", String(number))
            let revoked = try CertificateRecord.filter(Column("status") == CertificateRecord.Status.revoked.rawValue).fetchAll(db)
            return (number, revoked)
        }
        let issuerSerial = signer.certificate?.serial.hex
        let entries = revoked.filter { $0.issuerSerial == issuerSerial }.compactMap { record -> CertificateRevocationList.Entry? in
            guard let serial = SerialNumber(hex: record.serial), let revokedAt = record.revokedAt else { return nil }
            let reason = record.revocationReason.flatMap(RevocationReason.init(indexName:))
            return .init(serial: serial, revokedAt: revokedAt, reasonCode: reason?.code)
        }
        let crl = try CertificateRevocationList.sign(entries: entries, number: number, thisUpdate: now,
                                                     nextUpdate: Period(amount: days, unit: .days).after(now),
                                                     issuer: signer.certificate!, key: signer.key)
        try AtomicFile.write(try crl.pemEncoded(), to: authority.directory.file(CADirectory.crl))
        try authority.writeIndex(now: now)
        return number
    }
}
