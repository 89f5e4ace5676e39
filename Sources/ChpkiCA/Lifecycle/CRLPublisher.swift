import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Signs the CA's CRL: every revoked certificate of the issuing CA, under the next cRLNumber. The
/// number, the revocations and the signed CRL are stored in one transaction (`CASession.revokeAndPublishCRL`).
public enum CRLPublisher {
    /// How long a CRL is valid unless `crl --lifetime` says otherwise (thirty days, as the
    /// reference clusters' monthly CRL timer expects).
    public static let defaultLifetime = Period(amount: 30, unit: .days)
    /// The longest a CRL may be given: a CRL is a promise about revocations to come, not a certificate.
    public static let longestLifetime = Period(amount: 3650, unit: .days)

    package static func sign(_ input: CADatabase.CRLInput, signer: Signer, now: Date, lifetime: Period) throws -> Data {
        let issuer = signer.certificate!
        let nextUpdate = lifetime.after(now)
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
