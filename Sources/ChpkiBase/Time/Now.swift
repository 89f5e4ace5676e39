import Foundation

/// The current time, which tests of a debug build may pin: `CHPKI_NOW=2027-01-01T00:00:00Z` (RFC 3339)
/// makes every command behave as if it ran at that instant. A release build (the package) ignores it:
/// it moves every signed notBefore/notAfter, so it must not be a knob of the shipped binary; tests of a
/// release build move the clock with `faketime` instead.
public enum Now {
    public static let environmentVariable = "CHPKI_NOW"

    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Date {
        #if DEBUG
        return try pinned(environment) ?? Date()
        #else
        return Date()
        #endif
    }

    package static func pinned(_ environment: [String: String]) throws -> Date? {
        guard let text = environment[environmentVariable], !text.isEmpty else { return nil }
        guard let date = RFC3339.parse(text) else {
            throw ChpkiError.input(.usageInvalidValue, file: nil, field: environmentVariable, "'\(text)' is not an RFC 3339 time such as 2027-01-01T00:00:00Z")
        }
        return date
    }
}

/// RFC 3339 UTC timestamps, as `--json` output and the CA database store them.
public enum RFC3339 {
    public static func format(_ date: Date) -> String {
        if let text = formatWholeSeconds(date) { return text }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// Whole seconds in years 1970-9999 (every certificate and database time) by arithmetic: an
    /// ISO8601DateFormatter costs more to create than a bundle run spends on a host, and plans
    /// format one time per certificate. Nil for anything else, which the formatter handles.
    package static func formatWholeSeconds(_ date: Date) -> String? {
        let interval = date.timeIntervalSince1970
        guard interval >= 0, interval < 253_402_300_800, interval == interval.rounded(.down) else { return nil }
        let seconds = Int(interval)
        let (days, daySeconds) = seconds.quotientAndRemainder(dividingBy: 86_400)
        // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil, inverted).
        let shifted = days + 719_468
        let era = shifted / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let yearText = String(repeating: "0", count: max(0, 4 - String(year).count)) + String(year)
        return "\(yearText)-\(two(month))-\(two(day))T\(two(daySeconds / 3600)):\(two(daySeconds / 60 % 60)):\(two(daySeconds % 60))Z"
    }

    public static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
