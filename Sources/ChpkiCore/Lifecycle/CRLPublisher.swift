import Foundation

/// Signs the CA's CRL: every revoked certificate of the issuing CA, under the next cRLNumber. The
/// number, the revocations and the signed CRL are stored in one transaction (`CASession.revokeAndPublishCRL`).
public enum CRLPublisher {
    public static let defaultDays = 30

    static func sign(_ input: CADatabase.CRLInput, signer: Signer, now: Date, days: Int) throws -> Data {
        let issuer = signer.certificate!
        let nextUpdate = Period(amount: days, unit: .days).after(now)
        try SigningClock.check(issuer: issuer, now: now)
        try SigningClock.checkNextUpdate(nextUpdate, issuer: issuer, now: now, latestRecorded: input.latestRecorded)
        let entries = input.revoked.compactMap { record -> CertificateRevocationList.Entry? in
            guard let revocation = record.revocation else { return nil }
            return .init(serial: record.serial, revokedAt: revocation.date, reasonCode: revocation.reason?.code)
        }
        let crl = try CertificateRevocationList.sign(entries: entries, number: input.number, thisUpdate: now,
                                                     nextUpdate: nextUpdate, issuer: issuer, key: signer.key)
        return try crl.pemEncoded()
    }
}
