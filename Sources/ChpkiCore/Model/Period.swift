import Foundation

/// A length of time written the way `cluster.yml` and the CLI write it: `397d`, `10y`, `12w`, `36h`.
/// A bare number means days. Years and months are calendar years and months, so `10y` from
/// 2026-11-22 ends on 2036-11-22, as an operator reading the flag expects.
public struct Period: Sendable, Equatable, CustomStringConvertible {
    public enum Unit: String, Sendable { case hours = "h", days = "d", weeks = "w", months = "m", years = "y" }
    public let amount: Int
    public let unit: Unit

    public init(amount: Int, unit: Unit) {
        self.amount = amount
        self.unit = unit
    }

    /// Parses `30d`, `10y`...; returns nil for anything else, so callers can name the field in their error.
    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let first = trimmed.first, first.isASCII, first.isNumber else { return nil }
        var digits = trimmed
        var unit = Unit.days
        if let last = trimmed.last, let parsed = Unit(rawValue: String(last)) {
            unit = parsed
            digits.removeLast()
        }
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), let amount = Int(digits), amount > 0,
              amount <= 100_000 else { return nil }
        self.init(amount: amount, unit: unit)
    }

    public var description: String { "\(amount)\(unit.rawValue)" }

    /// `start` moved forward by this period (UTC calendar arithmetic).
    public func after(_ start: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var components = DateComponents()
        switch unit {
        case .hours: components.hour = amount
        case .days: components.day = amount
        case .weeks: components.day = amount * 7
        case .months: components.month = amount
        case .years: components.year = amount
        }
        return calendar.date(byAdding: components, to: start) ?? start
    }

    /// `start` moved back by this period; used for "renew when within `renew_before` of expiry".
    public func before(_ end: Date) -> Date {
        Period(amount: -amount, unit: unit).after(end)
    }

    public static let help = "a number followed by h, d, w, m or y (e.g. 397d, 10y); a bare number is days"
}
