import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Which CRLs of `crl.pem` are past their nextUpdate or due within a window: a verifier rejects
/// every leaf of a CA whose CRL has expired ("CRL has expired" under `-crl_check`), so `expiring`
/// and `verify` flag it as they flag a certificate (SPEC §1, exit 1).
public enum CRLFreshness {
    /// Default window: a weekly timer (docs/operations.md) re-signs well before a 30-day CRL lapses.
    public static let window = Period(amount: 7, unit: .days)

    public struct Item: Sendable, Encodable {
        public var issuer: String
        public var nextUpdate: Date
        public var expired: Bool

        enum CodingKeys: String, CodingKey {
            case issuer, expired
            case nextUpdate = "next_update"
        }

        /// One line naming the issuer and its nextUpdate, and what to do.
        public var line: String {
            "CRL of \(issuer): nextUpdate \(RFC3339.format(nextUpdate)) \(expired ? "has passed" : "is near"): run 'chpki crl'"
        }
    }

    /// The CRLs in `pem` whose nextUpdate is missing, passed, or within `window` of `now` (at most
    /// the default window: a certificate window such as `--within 90d` would flag every 30-day CRL
    /// from the day it was signed).
    public static func due(_ pem: Data?, now: Date, window: Period? = nil) throws -> [Item] {
        guard let pem else { return [] }
        let horizon = min(window?.after(now) ?? .distantFuture, Self.window.after(now))
        return try CertificateRevocationList.all(inPEM: pem).compactMap { crl in
            let nextUpdate = crl.nextUpdate ?? crl.thisUpdate
            guard nextUpdate <= horizon else { return nil }
            return Item(issuer: crl.issuer.rfc4514, nextUpdate: nextUpdate, expired: nextUpdate <= now)
        }
    }
}
