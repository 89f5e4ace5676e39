import Foundation

/// The UTC calendar fields of a whole second, from the C library's `gmtime_r` (proleptic
/// Gregorian), and the digits chpki's time formats write them with: one breakdown for RFC 3339,
/// the CA database's dates and index.txt's ASN.1 times, each of which formats thousands of times a
/// run (Foundation's calendar and formatters cost more than the rest of a row). For times
/// `gmtime_r` can represent: every caller range-checks, or holds a certificate's time.
public struct UTCFields: Sendable {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int

    public init(wholeSeconds: Int) {
        var time = time_t(wholeSeconds)
        var parts = tm()
        _ = gmtime_r(&time, &parts)
        year = Int(parts.tm_year) + 1900
        month = Int(parts.tm_mon) + 1
        day = Int(parts.tm_mday)
        hour = Int(parts.tm_hour)
        minute = Int(parts.tm_min)
        second = Int(parts.tm_sec)
    }

    /// `7` → `07`.
    public static func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// The year zero-padded to four digits.
    public var fourDigitYear: String {
        let text = String(year)
        return String(repeating: "0", count: max(0, 4 - text.count)) + text
    }
}
