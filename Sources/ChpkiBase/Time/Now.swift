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
        let time = UTCFields(wholeSeconds: Int(interval))
        let two = UTCFields.twoDigits
        return "\(time.fourDigitYear)-\(two(time.month))-\(two(time.day))T\(two(time.hour)):\(two(time.minute)):\(two(time.second))Z"
    }

    public static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
