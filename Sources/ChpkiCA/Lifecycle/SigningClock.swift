import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// SPEC §8: chpki signs nothing while the clock is before the issuing CA's notBefore (a leaf valid
/// 2019–2020 under a 2026 issuer, a CRL dated before its CA), and never publishes a CRL whose
/// nextUpdate is not after the latest time the CA itself has recorded: a clock set back would
/// otherwise publish a CRL that every verifier rejects as expired ("CRL has expired") the day it
/// is installed. Both checks run before the transaction commits, so a refusal changes nothing.
public enum SigningClock {
    /// Refuses to sign with `issuer` at `now` when `now` is before the issuer's notBefore.
    public static func check(issuer: Certificate, now: Date) throws {
        guard now < issuer.notBefore else { return }
        throw ChpkiError.input(.caClockBeforeIssuer, file: nil, field: nil,
            "refusing to sign: the clock says \(RFC3339.format(now)), before the notBefore \(RFC3339.format(issuer.notBefore)) "
            + "of the issuing CA \(issuer.subject.rfc4514) (serial \(issuer.serial.hex)); set the system clock (nothing was changed)")
    }

    /// Refuses a CRL of `issuer` whose nextUpdate is not after `latestRecorded` (the latest time in ca.db).
    static func checkNextUpdate(_ nextUpdate: Date, issuer: Certificate, now: Date, latestRecorded: Date?) throws {
        guard let latestRecorded, nextUpdate <= latestRecorded else { return }
        throw ChpkiError.input(.caClockWentBack, file: CADatabase.fileName, field: nil,
            "refusing to publish a CRL of \(issuer.subject.rfc4514) with nextUpdate \(RFC3339.format(nextUpdate)): the clock says "
            + "\(RFC3339.format(now)) but this CA recorded a change at \(RFC3339.format(latestRecorded)), so the CRL would be expired "
            + "when published; set the system clock (nothing was changed)")
    }
}
