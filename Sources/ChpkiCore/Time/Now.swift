import Foundation

/// The current time, which tests may pin: `CHPKI_NOW=2027-01-01T00:00:00Z` (RFC 3339) makes every
/// command behave as if it ran at that instant. For testing only; operators never need it.
public enum Now {
    public static let environmentVariable = "CHPKI_NOW"

    public static func current(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Date {
        guard let text = environment[environmentVariable], !text.isEmpty else { return Date() }
        guard let date = RFC3339.parse(text) else {
            throw ChpkiError.input(file: nil, field: environmentVariable, "'\(text)' is not an RFC 3339 time such as 2027-01-01T00:00:00Z")
        }
        return date
    }
}

/// RFC 3339 UTC timestamps, as `--json` output and the CA database store them.
public enum RFC3339 {
    public static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    public static func parse(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
