import Foundation

/// A length of time written the way `cluster.yml` and the CLI write it: `397d`, `10y`, `12w`, `36h`,
/// `90min`, `45s`. A bare number means days. Years and months are calendar years and months, so `10y`
/// from 2026-11-22 ends on 2036-11-22, as an operator reading the flag expects; the other units are
/// fixed lengths. Durations go down to the second so a whole lifetime (leaves, renewal window, CRLs,
/// rotation) can be compressed into minutes and walked through by a real clock (SPEC §7 "Lifetime").
///
/// `m` is months, not minutes: inventories written before `min` and `mo` existed say `6m` for six
/// months, and they keep their meaning. New text should write `mo` (months) or `min` (minutes).
public struct Period: Sendable, Equatable, CustomStringConvertible {
    public enum Unit: String, Sendable, CaseIterable {
        case seconds = "s", minutes = "min", hours = "h", days = "d", weeks = "w", months = "mo", years = "y"

        /// Every spelling a unit is read from; `m` is the months of older inventories.
        static let spellings: [String: Unit] = {
            var table = Dictionary(uniqueKeysWithValues: allCases.map { ($0.rawValue, $0) })
            table["m"] = .months
            return table
        }()

        /// The longest a unit gets (seconds), to bound a period to `Period.longest` before any arithmetic.
        var seconds: Int {
            switch self {
            case .seconds: 1
            case .minutes: 60
            case .hours: 3_600
            case .days: 86_400
            case .weeks: 604_800
            case .months: 31 * 86_400
            case .years: 366 * 86_400
            }
        }
    }

    public let amount: Int
    public let unit: Unit

    /// Nothing chpki signs or waits for is longer than a century; the bound also keeps every
    /// calendar computation far from overflow whatever the text said.
    public static let longest = 100 * 366 * 86_400

    public init(amount: Int, unit: Unit) {
        self.amount = amount
        self.unit = unit
    }

    /// Parses `30d`, `10y`, `90min`, `6mo`...; returns nil for anything else (zero, negative, a
    /// fraction, an unknown unit, longer than a century), so callers can name the field in their error.
    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        let suffix = trimmed.dropFirst(digits.count)
        guard !digits.isEmpty, digits.count <= 10, let amount = Int(digits), amount > 0 else { return nil }
        let unit: Unit
        if suffix.isEmpty {
            unit = .days
        } else if let parsed = Unit.spellings[String(suffix)] {
            unit = parsed
        } else {
            return nil
        }
        guard amount <= Period.longest / unit.seconds else { return nil }
        self.init(amount: amount, unit: unit)
    }

    public var description: String { "\(amount)\(unit.rawValue)" }

    /// `start` moved forward by this period (UTC calendar arithmetic for months and years).
    public func after(_ start: Date) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var components = DateComponents()
        switch unit {
        case .seconds, .minutes, .hours, .days, .weeks:
            return start.addingTimeInterval(TimeInterval(amount * unit.seconds))
        case .months: components.month = amount
        case .years: components.year = amount
        }
        return calendar.date(byAdding: components, to: start) ?? start
    }

    /// `start` moved back by this period; used for "renew when within `renew_before` of expiry".
    public func before(_ end: Date) -> Date {
        Period(amount: -amount, unit: unit).after(end)
    }

    /// A measured length as whole seconds (at least one, at most `longest`): what `renew` re-issues
    /// for, read back from the certificate, so a lifetime of minutes stays minutes.
    public init(seconds: TimeInterval) {
        let whole = seconds.isFinite ? Int(max(1, min(seconds.rounded(), TimeInterval(Period.longest)))) : 1
        self.init(amount: whole, unit: .seconds)
    }

    public static let help = "a number followed by s, min, h, d, w, mo or y (e.g. 397d, 10y, 90min); "
        + "a bare number is days; m is months, as in older inventories"
}
