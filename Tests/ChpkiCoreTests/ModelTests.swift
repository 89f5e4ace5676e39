import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

@Suite("Names, periods and paths")
struct ModelTests {
    @Test("RFC 4514 and OpenSSL subjects parse to encoding order")
    func subjectParsing() throws {
        let rfc = try DistinguishedName(parsing: "CN=Cinc Root CA,O=Acme\\, Inc.,C=US", field: "--subject")
        #expect(rfc.attributes == [.init("C", "US"), .init("O", "Acme, Inc."), .init("CN", "Cinc Root CA")])
        #expect(rfc.rfc4514 == "CN=Cinc Root CA,O=Acme\\, Inc.,C=US")
        let slash = try DistinguishedName(parsing: "/C=US/O=Acme/CN=Root", field: "--subject")
        #expect(slash.attributes == [.init("C", "US"), .init("O", "Acme"), .init("CN", "Root")])
        #expect(try DistinguishedName(parsing: "cn=x,c=de", field: "f").attributes == [.init("C", "de"), .init("CN", "x")])
    }

    @Test("malformed subjects are refused naming the option", arguments: [
        ("", "empty"), ("CN", "not TYPE=value"), ("XX=foo,CN=a", "unknown attribute 'XX'"), ("CN=a,C=USA", "expected two letters"),
        ("CN=a,,O=b", "empty RDN"), ("CN=,O=b", "empty value"), ("O=b", "needs a CN"), ("CN=a+OU=b", "multi-valued"),
        ("CN=a\\", "lone backslash"), ("CN=" + String(repeating: "x", count: 65), "at most 64 are allowed"),
    ])
    func badSubjects(text: String, reason: String) {
        do {
            _ = try DistinguishedName(parsing: text, field: "--subject")
            Issue.record("'\(text)' was accepted")
        } catch let error as ChpkiError {
            #expect(error.message.hasPrefix("--subject: "))
            #expect(error.message.contains(reason), "\(error.message)")
            #expect(error.exitCode == 2)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("RFC 4514 escaping of special characters")
    func escaping() {
        #expect(DistinguishedName.escape("a,b+c\"d\\e<f>g;h") == "a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h")
        #expect(DistinguishedName.escape("#lead") == "\\#lead")
        #expect(DistinguishedName.escape(" pad ") == "\\ pad\\ ")
        #expect(DistinguishedName.escape("mid#dle") == "mid#dle")
    }

    @Test("periods")
    func periods() throws {
        let start = try #require(RFC3339.parse("2026-11-22T00:00:00Z"))
        #expect(Period("10y")?.after(start) == RFC3339.parse("2036-11-22T00:00:00Z"))
        #expect(Period("397d")?.after(start) == start.addingTimeInterval(397 * 86400))
        #expect(Period("30")?.unit == .days)
        #expect(Period("2w")?.after(start) == start.addingTimeInterval(14 * 86400))
        for bad in ["", "d", "-1d", "0d", "1.5y", "10x", "1e3d"] { #expect(Period(bad) == nil, "\(bad)") }
    }

    @Test("periods to the second: s, min, h, d, w, mo, y; m stays months")
    func periodsToTheSecond() throws {
        let start = try #require(RFC3339.parse("2026-11-22T00:00:00Z"))
        #expect(Period("45s")?.after(start) == start.addingTimeInterval(45))
        #expect(Period("90min")?.after(start) == start.addingTimeInterval(90 * 60))
        #expect(Period("36h")?.after(start) == start.addingTimeInterval(36 * 3600))
        #expect(Period("6mo")?.after(start) == RFC3339.parse("2027-05-22T00:00:00Z"))
        #expect(Period("6m") == Period("6mo"), "m is months, as in inventories written before mo")
        #expect(Period("6M") == Period("6mo"))
        #expect(Period("3MIN") == Period(amount: 3, unit: .minutes))
        #expect(Period("45s")?.before(start) == start.addingTimeInterval(-45))
        #expect(Period("1mo")?.description == "1mo")
        #expect(Period("90min")?.description == "90min")
        // A century is the longest; more is refused before any arithmetic can overflow.
        #expect(Period("100y") != nil)
        #expect(Period("101y") == nil)
        #expect(Period("\(Period.longest)s") != nil)
        #expect(Period("\(Period.longest + 1)s") == nil)
        for bad in ["5 min", "5mins", "5sec", "5ms", "s", "min", "1.5s", "99999999999s", "5mn", "5mi", "+5s", "5s5",
                    "0s", "5yy", "٣d", "5\u{0}s"] {
            #expect(Period(bad) == nil, "\(bad)")
        }
        #expect(Period(seconds: 1701.4) == Period(amount: 1701, unit: .seconds))
        #expect(Period(seconds: 0.2) == Period(amount: 1, unit: .seconds))
        #expect(Period(seconds: .infinity) == Period(amount: 1, unit: .seconds))
    }

    @Test("path arithmetic")
    func paths() {
        #expect(Path.parent(of: "x") == ".")
        #expect(Path.parent(of: "a/b") == "a")
        #expect(Path.parent(of: "/b") == "/")
        #expect(Path.parent(of: "a/b/") == "a")
        #expect(Path.name(of: "a/b") == "b")
        #expect(Path.join("a", "b", "c") == "a/b/c")
        #expect(Path.join("a/", "b") == "a/b")
    }

    @Test("the demo's built-in inventory is examples/reference-000.yml")
    func embeddedExample() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/reference-000.yml")
        #expect(try String(contentsOf: file, encoding: .utf8) == ExampleInventory.reference000)
        let inventory = try Inventory.parse(yaml: ExampleInventory.reference000, path: "reference-000.yml")
        #expect(inventory.hosts.count == 8)
    }

    @Test("name constraints cover the domain, short names, the admin name, /24 networks and loopback")
    func constraintsPolicy() throws {
        let inventory = try Inventory.parse(yaml: ExampleInventory.reference000, path: "reference-000.yml")
        let permitted = NameConstraintsPolicy.constraints(for: inventory).permitted.map(\.description)
        #expect(permitted == ["DNS:example.com", "DNS:localhost", "DNS:backend-1", "DNS:backend-2", "DNS:backend-3",
                              "DNS:backend-4", "DNS:frontend-1", "DNS:frontend-2", "DNS:haproxy-1", "DNS:haproxy-2",
                              "DNS:admin", "IP:10.0.0.0/24", "IP:127.0.0.0/8", "IP:::1/128"])
    }
}

@Suite("Name constraints check")
struct NameConstraintsCheckTests {
    let check = NameConstraintsCheck(NameConstraints(
        permitted: [.dns("example.com"), .dns("backend-1"), .dns(".sub.test"),
                    .network(containing: [10, 0, 0, 0], prefixLength: 24),
                    .network(containing: [UInt8](repeating: 0, count: 15) + [1], prefixLength: 128)],
        excluded: [.dns("bad.example.com")]))

    @Test("DNS names: equal or under a permitted subtree, never under an excluded one")
    func dns() {
        for name in ["example.com", "a.example.com", "A.B.Example.COM", "backend-1", "x.backend-1", "y.sub.test"] {
            #expect(check.isPermitted(.dns(name)), "\(name)")
        }
        for name in ["example.org", "notexample.com", "backend-2", "sub.test", "bad.example.com", "x.bad.example.com", "com"] {
            #expect(!check.isPermitted(.dns(name)), "\(name)")
        }
    }

    @Test("IP addresses: inside a permitted network of their family")
    func ip() {
        #expect(check.isPermitted(.ip([10, 0, 0, 77])))
        #expect(!check.isPermitted(.ip([10, 0, 1, 1])))
        #expect(check.isPermitted(.ip([UInt8](repeating: 0, count: 15) + [1])))
        #expect(!check.isPermitted(.ip([0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 12))))
        #expect(check.firstViolation([.dns("a.example.com"), .ip([192, 168, 1, 1])]) == .ip([192, 168, 1, 1]))
    }
}

/// Each naming rule exists once: every reader that takes the value gives the same answer.
@Suite("One rule per value")
struct SharedRuleTests {
    @Test("a service name is refused alike by the inventory and by issue server", arguments: ["abc-", "-abc", "Abc", "a_b", "", String(repeating: "a", count: 64)])
    func serviceNames(name: String) throws {
        #expect(ServiceName.problem(with: name) != nil)
        #expect(throws: ChpkiError.self) { try OneOffProfiles.checkServiceName(name) }
        let yaml = """
            domain: example.com
            hosts:
              - {name: a.example.com, ips: [10.0.0.1], groups: [g]}
            services:
              "\(name)": {hosts: g}
            """
        #expect(throws: ChpkiError.self) { try Inventory.parse(yaml: yaml, path: "cluster.yml") }
    }

    @Test("a DN attribute is refused alike by the inventory subject and by --subject", arguments: [
        ("O", "\\ Acme"), ("O", "Acme\\ "), ("C", "USA"), ("OU", String(repeating: "x", count: 65)),
    ])
    func attributes(type: String, escaped: String) throws {
        #expect(throws: ChpkiError.self) { try DistinguishedName(parsing: "CN=root,\(type)=\(escaped)", field: "--subject") }
        let value = escaped.replacingOccurrences(of: "\\", with: "")
        #expect(DNAttributeValue.problem(type: type, value: value) != nil)
    }

    @Test("one text form of an address", arguments: ["::1.2.3.4", "2001:db8::1", "10.0.0.1", "::ffff:10.0.0.1", "2001:db8:0:1:0:0:0:1"])
    func addresses(text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(GeneralName.ip(address.bytes).description == "IP:\(address.description)")
    }
}
