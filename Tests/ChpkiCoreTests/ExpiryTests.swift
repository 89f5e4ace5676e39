import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// Expiry (`chpki expiring`): which valid certificates are due within a window, with a CA flagged a
/// year ahead by default and a leaf at its renew_before; revoked and superseded ones never; the
/// days left rounded down; and the JSON fields scripts read. Then the same on a real CA.
@Suite("Expiry")
struct ExpiryTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let day: TimeInterval = 86_400
    static let renewBefore = Period(amount: 30, unit: .days)

    static func record(_ kind: CertificateKind, expiresIn seconds: TimeInterval, status: CertificateStatus = .valid,
                       service: String? = "etcd", host: String? = "node-1.example.com", name: String? = "node-1.example.com",
                       subject: String = "CN=node-1.example.com", serial: String? = nil) -> IssuedCertificate {
        IssuedCertificate(
            serial: SerialNumber(hex: serial ?? String(repeating: "1A", count: 16))!, kind: kind, host: kind.isAuthority ? nil : host,
            service: kind.isAuthority ? nil : service, name: kind.isAuthority ? nil : name, subject: subject, subjectOneLine: "",
            subjectAlternativeNames: [], profile: nil, keyType: .ecP256, issuerSerial: nil,
            notBefore: now.addingTimeInterval(-365 * day), notAfter: now.addingTimeInterval(seconds), status: status,
            revocation: nil, supersededBy: nil, authorityRole: kind.isAuthority ? .current : nil, certificatePEM: "")
    }

    static func due(_ records: [IssuedCertificate], window: Period? = nil) -> [Expiry.Item] {
        Expiry.due(records, now: now, window: window, renewBefore: renewBefore)
    }

    @Test("a leaf is due once within renew_before of its notAfter, not a second earlier")
    func leafAtRenewBefore() {
        #expect(Self.due([Self.record(.server, expiresIn: 30 * Self.day)]).count == 1)
        #expect(Self.due([Self.record(.server, expiresIn: 30 * Self.day - 1)]).count == 1)
        #expect(Self.due([Self.record(.server, expiresIn: 30 * Self.day + 1)]).isEmpty)
        #expect(Self.due([Self.record(.client, expiresIn: 31 * Self.day)]).isEmpty)
    }

    @Test("an expired valid certificate is due, with negative days left")
    func expired() throws {
        let items = Self.due([Self.record(.server, expiresIn: -3 * Self.day)])
        let item = try #require(items.first)
        #expect(item.daysLeft == -3)
    }

    @Test("a CA certificate is flagged a year ahead by default, a leaf is not")
    func authorityWindow() {
        let inHalfAYear = 180 * Self.day
        #expect(Self.due([Self.record(.root, expiresIn: inHalfAYear)]).map(\.kind) == ["ca"])
        #expect(Self.due([Self.record(.intermediate, expiresIn: inHalfAYear)]).map(\.kind) == ["ca"])
        #expect(Self.due([Self.record(.server, expiresIn: inHalfAYear)]).isEmpty)
        #expect(Self.due([Self.record(.root, expiresIn: 366 * Self.day)]).isEmpty)
        #expect(Self.due([Self.record(.root, expiresIn: 365 * Self.day)]).count == 1)
    }

    @Test("an explicit window applies to leaves and CAs alike")
    func explicitWindow() {
        let records = [Self.record(.root, expiresIn: 100 * Self.day), Self.record(.server, expiresIn: 50 * Self.day, serial: "2B" + String(repeating: "00", count: 15)),
                       Self.record(.server, expiresIn: 200 * Self.day, serial: "3C" + String(repeating: "00", count: 15))]
        #expect(Self.due(records, window: Period(amount: 60, unit: .days)).map(\.daysLeft) == [50])
        #expect(Self.due(records, window: Period(amount: 120, unit: .days)).map(\.daysLeft) == [100, 50])
        #expect(Self.due(records, window: Period(amount: 1, unit: .days)).isEmpty)
    }

    @Test("revoked and superseded certificates are never due", arguments: [CertificateStatus.revoked, .superseded])
    func onlyValid(status: CertificateStatus) {
        #expect(Self.due([Self.record(.server, expiresIn: Self.day, status: status)]).isEmpty)
        #expect(Self.due([Self.record(.root, expiresIn: Self.day, status: status)]).isEmpty)
    }

    static let dayCases: [(TimeInterval, Int)] = [
        (0, 0), (86_399, 0), (86_400, 1), (86_401, 1), (863_999, 9), (-1, -1), (-86_400, -1), (-86_401, -2),
    ]

    @Test("days left are whole days rounded down", arguments: dayCases)
    func daysLeft(seconds: TimeInterval, days: Int) throws {
        let item = try #require(Self.due([Self.record(.server, expiresIn: seconds)]).first)
        #expect(item.daysLeft == days)
    }

    @Test("an item names the leaf by service, host and name; a CA by its subject")
    func naming() throws {
        let leaf = try #require(Self.due([Self.record(.server, expiresIn: Self.day)]).first)
        #expect(leaf.kind == "server")
        #expect(leaf.service == "etcd" && leaf.host == "node-1.example.com" && leaf.name == "node-1.example.com")
        #expect(leaf.serial == String(repeating: "1A", count: 16))
        #expect(leaf.notAfter == Self.now.addingTimeInterval(Self.day))
        let ca = try #require(Self.due([Self.record(.root, expiresIn: Self.day, subject: "CN=Cinc Root CA")]).first)
        #expect(ca.kind == "ca")
        #expect(ca.service == nil && ca.host == nil)
        #expect(ca.name == "CN=Cinc Root CA")
        // a leaf without a name (an imported one) is named by its subject too
        let unnamed = try #require(Self.due([Self.record(.client, expiresIn: Self.day, name: nil, subject: "CN=someone")]).first)
        #expect(unnamed.name == "CN=someone")
    }

    @Test("the order of the records is kept")
    func order() {
        let serials = (1...5).map { String(format: "%02X", $0) + String(repeating: "00", count: 15) }
        let records = serials.enumerated().map { Self.record(.server, expiresIn: TimeInterval(5 - $0.offset) * Self.day, serial: $0.element) }
        #expect(Self.due(records).map(\.serial) == serials)
    }

    @Test("the JSON has the snake_case fields, and null for what a CA lacks")
    func json() throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        let ca = try #require(Self.due([Self.record(.root, expiresIn: Self.day)]).first)
        let object = try JSONSerialization.jsonObject(with: try encoder.encode(ca)) as! [String: Any]
        #expect(Set(object.keys) == ["kind", "service", "host", "name", "serial", "not_after", "days_left"])
        #expect(object["service"] is NSNull)
        #expect(object["host"] is NSNull)
        #expect(object["days_left"] as? Int == 1)
        #expect(object["kind"] as? String == "ca")
    }

    @Test("nothing in, nothing due")
    func empty() {
        #expect(Self.due([]).isEmpty)
    }

    // MARK: - on a real CA

    @Test("on a new CA: nothing due today; at the leaves' renew_before they are; the CA a year before its end")
    func realCA() throws {
        let now = Date()
        let directory = try CATestSupport.newCA(validity: Period(amount: 3, unit: .years), now: now)
        let inventory = try CATestSupport.inventory(CATestSupport.inventoryYAML.replacingOccurrences(
            of: "domain: example.com", with: "domain: example.com\ndefaults: {validity: 90d, renew_before: 20d}"))
        try CATestSupport.issue(directory, inventory, now: now)
        try CATestSupport.withSession(directory, .read, now: now) { session throws in
            let records = try session.certificates()
            let renewBefore = Period(amount: 20, unit: .days)
            #expect(Expiry.due(records, now: now, window: nil, renewBefore: renewBefore).isEmpty)
            let leaves = records.filter { !$0.kind.isAuthority }
            #expect(leaves.count == NamingRules.profiles(for: inventory).count)
            #expect(leaves.count >= 3)
            // 71 days on: inside the 20-day window of a 90-day leaf
            let later = now.addingTimeInterval(71 * Self.day)
            let dueLater = Expiry.due(records, now: later, window: nil, renewBefore: renewBefore)
            #expect(Set(dueLater.map(\.serial)) == Set(leaves.map(\.serial.hex)))
            #expect(dueLater.allSatisfy { $0.kind != "ca" && $0.service == "etcd" && $0.daysLeft >= 18 && $0.daysLeft <= 19 })
            // the intermediate lives at most the root's 3 years: both are flagged a year before
            let nearTheEnd = now.addingTimeInterval((3 * 366 - 360) * Self.day)
            let cas = Expiry.due(records, now: nearTheEnd, window: nil, renewBefore: renewBefore).filter { $0.kind == "ca" }
            #expect(cas.count == 2)
        }
    }
}
