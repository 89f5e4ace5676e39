import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Which valid certificates expire within a window (`chpki expiring`).
public enum Expiry {
    /// CA certificates are flagged a year ahead: a rotation takes longer than a renewal.
    public static let authorityWindow = Period(amount: 365, unit: .days)

    public struct Item: Sendable, Encodable {
        public var kind: String
        @NullEncoded public var service: String?
        @NullEncoded public var host: String?
        @NullEncoded public var name: String?
        public var serial: String
        public var notAfter: Date
        public var daysLeft: Int

        enum CodingKeys: String, CodingKey {
            case kind, service, host, name, serial
            case notAfter = "not_after", daysLeft = "days_left"
        }

    }

    /// Valid certificates whose notAfter is within `window` of `now` (default: `renewBefore` for
    /// leaves, `authorityWindow` for CAs).
    public static func due(_ records: [IssuedCertificate], now: Date, window: Period?, renewBefore: Period) -> [Item] {
        records.filter { record in
            record.status == .valid
                && RenewalRule.isDue(notAfter: record.notAfter, window: window ?? (record.kind.isAuthority ? authorityWindow : renewBefore), now: now)
        }.map { record in
            Item(kind: record.kind.isAuthority ? "ca" : record.kind.rawValue, service: record.service, host: record.host,
                 name: record.name ?? record.subject, serial: record.serial.hex, notAfter: record.notAfter,
                 daysLeft: TimeLeft.days(until: record.notAfter, from: now))
        }
    }
}
