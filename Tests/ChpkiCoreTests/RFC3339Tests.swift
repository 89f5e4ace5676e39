import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

@Suite("RFC 3339 formatting")
struct RFC3339Tests {
    /// What RFC3339.format printed before its arithmetic fast path: ICU's formatter.
    static func formatter(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    @Test("the arithmetic path prints what ISO8601DateFormatter prints")
    func matchesFormatter() {
        var generator = SystemRandomNumberGenerator()
        var dates: [Double] = [0, 59, 86_399, 86_400, 951_782_400, 951_868_800, 4_107_542_400, 253_402_300_799]  // leap days, 2100, 9999
        for _ in 0..<3000 { dates.append(Double(Int.random(in: 0..<253_402_300_800, using: &generator))) }
        for seconds in dates {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(RFC3339.formatWholeSeconds(date) == Self.formatter(date), "\(seconds)")
        }
    }

    @Test("fractional, pre-1970 and after-9999 times go to the formatter")
    func fallsBack() {
        for seconds in [-1.0, 1.5, 253_402_300_800] {
            #expect(RFC3339.formatWholeSeconds(Date(timeIntervalSince1970: seconds)) == nil)
            #expect(RFC3339.format(Date(timeIntervalSince1970: seconds)) == Self.formatter(Date(timeIntervalSince1970: seconds)))
        }
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_700_000_000)) == "2023-11-14T22:13:20Z")
    }
}
