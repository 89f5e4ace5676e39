import Foundation
import Testing
@testable import ChpkiCore

/// The renewal rule (`RenewalRule.isDue`), at its edges: the window's first second, an expired
/// leaf, and the cap at the issuer's end (a leaf that already ends with the CA that would sign its
/// renewal is not due: renewing it would give the same date again, every week). Then the profile
/// `renew` reads back from a real certificate, and the issuance plan using the same rule.
@Suite("Renewal rule")
struct RenewalRuleTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let day: TimeInterval = 86_400
    static let window = Period(amount: 30, unit: .days)

    static func due(endsIn seconds: TimeInterval, issuerEndsIn issuer: TimeInterval? = nil, window: Period = window) -> Bool {
        RenewalRule.isDue(notAfter: now.addingTimeInterval(seconds), window: window, now: now,
                          issuerEnds: issuer.map { now.addingTimeInterval($0) })
    }

    @Test("due from the window's first second on, not one second before")
    func windowEdges() {
        #expect(Self.due(endsIn: 30 * Self.day))
        #expect(Self.due(endsIn: 30 * Self.day - 1))
        #expect(!Self.due(endsIn: 30 * Self.day + 1))
        #expect(Self.due(endsIn: 0))
        #expect(Self.due(endsIn: -Self.day), "an expired leaf is due")
    }

    @Test("the window is a Period: seconds and months mean what they say")
    func windowUnits() throws {
        let seconds = try #require(Period("90s"))
        #expect(Self.due(endsIn: 90, window: seconds))
        #expect(!Self.due(endsIn: 91, window: seconds))
        let months = try #require(Period("1mo"))
        // one calendar month before the end: 2027-01-15 for an end on 2027-02-15
        let end = try #require(RFC3339.parse("2027-02-15T00:00:00Z"))
        #expect(RenewalRule.isDue(notAfter: end, window: months, now: try #require(RFC3339.parse("2027-01-15T00:00:00Z"))))
        #expect(!RenewalRule.isDue(notAfter: end, window: months, now: try #require(RFC3339.parse("2027-01-14T23:59:59Z"))))
    }

    @Test("a leaf that ends with its issuer is not due; one that ends before it is")
    func issuerCap() {
        #expect(!Self.due(endsIn: 10 * Self.day, issuerEndsIn: 10 * Self.day), "capped at the issuer: renewal gives the same date")
        #expect(Self.due(endsIn: 10 * Self.day, issuerEndsIn: 10 * Self.day + 1))
        #expect(Self.due(endsIn: 10 * Self.day, issuerEndsIn: 400 * Self.day))
        #expect(!Self.due(endsIn: 40 * Self.day, issuerEndsIn: 400 * Self.day), "outside the window the issuer does not matter")
    }

    @Test("renew reads back the names, usages, key type and lifetime of the certificate it renews")
    func profileReadBack() throws {
        let ca = try CATestSupport.newCA()
        let inventory = try CATestSupport.inventory()
        try CATestSupport.issue(ca, inventory)
        let (leaves, wanted) = try CATestSupport.withSession(ca) { session in
            (try session.validLeaves(), NamingRules.profiles(for: inventory))
        }
        #expect(leaves.count == wanted.count && !leaves.isEmpty)
        let byIdentity = Dictionary(wanted.map { ($0.identity, $0) }, uniquingKeysWith: { first, _ in first })
        for record in leaves {
            let original = try #require(byIdentity[record.identity], "\(record.identity)")
            let back = try RenewCommand.profile(renewing: record, renewBefore: Self.window)
            #expect(back.identity == original.identity)
            #expect(back.essentials == original.essentials, "\(record.identity)")
            #expect(back.validity.after(Self.now) == original.validity.after(Self.now), "\(record.identity): lifetime \(back.validity)")
            #expect(back.renewBefore == Self.window)
        }
    }

    @Test("the plan renews a due leaf, and not one capped at its issuer's end")
    func planUsesTheRule() throws {
        let ca = try CATestSupport.newCA()
        let inventory = try CATestSupport.inventory()
        try CATestSupport.issue(ca, inventory)
        let leaves = try CATestSupport.withSession(ca) { try $0.validLeaves() }
        let profiles = NamingRules.profiles(for: inventory)
        let end = try #require(leaves.map(\.notAfter).max())
        // a day before the leaves end: inside any renew_before
        let late = end.addingTimeInterval(-Self.day)
        let due = IssuancePlan(profiles: profiles, existing: leaves, now: late)
        #expect(due.items.allSatisfy { $0.action == .renewed }, "\(due.items.map(\.action))")
        let capped = IssuancePlan(profiles: profiles, existing: leaves, now: late, issuerEnds: end)
        let latest = Set(leaves.filter { $0.notAfter == end }.map(\.identity))
        for item in capped.items where latest.contains(item.profile.identity) {
            #expect(item.action == .unchanged, "\(item.profile.identity): \(item.reason)")
        }
    }
}
