import Foundation

/// How long a certificate has left, as `expiring` and `list` show it: whole days, rounded down
/// (0 on its last day, negative once expired), and the exact seconds for `list --json`.
public enum TimeLeft {
    public static func days(until notAfter: Date, from now: Date) -> Int {
        Int((notAfter.timeIntervalSince(now) / 86400).rounded(.down))
    }

    public static func seconds(until notAfter: Date, from now: Date) -> Int {
        Int(notAfter.timeIntervalSince(now).rounded(.down))
    }

    /// The DAYS LEFT column's header, the same in every table.
    public static let header = "DAYS LEFT"
}
