import Foundation

/// Phase timings for `--verbose`: where a run spends its time.
public struct Stopwatch {
    private var last = DispatchTime.now()

    public init() {}

    /// Milliseconds since the previous lap (or creation).
    public mutating func lap() -> String {
        let now = DispatchTime.now()
        defer { last = now }
        return String(format: "%.1f ms", Double(now.uptimeNanoseconds - last.uptimeNanoseconds) / 1_000_000)
    }
}
