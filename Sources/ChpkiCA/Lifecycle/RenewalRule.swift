import Foundation
import ChpkiModel

/// "Due for renewal", in one place: `renewBefore` (or the window) before notAfter has passed.
public enum RenewalRule {
    /// Within `window` of its end, unless it already ends with the CA that would sign its renewal
    /// (`issuerEnds`): a renewal is capped at the issuer's end, so it would give the same date
    /// again, and every run would re-sign and restart everything for nothing (the soak found
    /// that storm in the weeks before a root's end). `expiring` still warns about the CA.
    public static func isDue(notAfter: Date, window: Period, now: Date, issuerEnds: Date? = nil) -> Bool {
        window.before(notAfter) <= now && (issuerEnds.map { notAfter < $0 } ?? true)
    }
}
