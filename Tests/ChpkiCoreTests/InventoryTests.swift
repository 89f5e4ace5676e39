import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA
@testable import ChpkiInventory

// MARK: - Fixtures

/// The example inventory of SPEC §2, verbatim.
let specExampleYAML = """
domain: example.com                 # service discovery domain: <service>.<domain>
subject:                            # DN attributes of every node and admin certificate
  OU: MyOrganizationalUnit
  O: MyCompany
  L: MyCity
  ST: MyState
  C: US
ca:
  common_name: Cinc Root CA
  key: ec-p384                      # rsa-2048 | rsa-3072 | rsa-4096 | ec-p256 | ec-p384 | ed25519
  validity: 10y
defaults:
  key: ec-p256
  validity: 397d
  renew_before: 30d
hosts:
  - name: backend-1.example.com     # FQDN; the short name is its first label
    ips: [10.0.0.1]
    groups: [backend]
  - name: frontend-1.example.com
    ips: [10.0.0.11]
    groups: [frontend]
  - name: haproxy-1.example.com
    ips: [10.0.0.21]
    groups: [balancer]
vips:                               # load-balanced names that haproxy terminates TLS for (reference 000)
  - name: cinc-opensearch-cluster   # the domain is appended
    ips: [10.0.0.100]
  - name: cinc-minio-cluster
    ips: [10.0.0.100]
  - name: cinc-server-cluster
    ips: [10.0.0.101]
services:                           # keys as in minicluster's service_credentials, plus `hosts`
  opensearch:
    hosts: backend                  # a group name or a list of host names
    key: rsa-2048
    server_cert_mode: both          # client | server | both  -> EKU
    enable_client: false
    extra_san: [cinc-opensearch-cluster]   # the domain is appended
  patroni: { hosts: backend, extra_san: [cinc-postgresql-cluster] }
  etcd:    { hosts: backend, server_cert_mode: both }
  minio:   { hosts: backend, extra_san: [cinc-minio-cluster] }
  nginx:   { hosts: frontend, extra_san: [cinc-server-cluster] }
  haproxy: { hosts: balancer }      # one server cert per VIP (SANs: VIP FQDN + its IPs) on every balancer
admin:
  name: admin                       # CN of the OpenSearch admin certificate

"""

/// Eight lines that bad-input cases extend; their own lines start at 9.
let baseYAML = """
domain: example.com
hosts:
  - name: backend-1.example.com
    ips: [10.0.0.1]
    groups: [backend]
  - name: frontend-1.example.com
    ips: [10.0.0.11]
    groups: [frontend]

"""

let examplesDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("examples")

func ip(_ text: String) -> IPAddress { IPAddress(text)! }

/// The message of the ChpkiError that parsing `yaml` throws, or a marker when it throws none.
func parseError(_ yaml: String) -> String {
    do {
        _ = try Inventory.parse(yaml: yaml, path: "cluster.yml")
        return "<no error>"
    } catch let error as ChpkiError {
        return error.message
    } catch {
        return "<not a ChpkiError: \(error)>"
    }
}

// MARK: - Good inventories

@Suite struct InventoryParsingTests {
    @Test func specExampleParsesToTheExpectedModel() throws {
        let inventory = try Inventory.parse(yaml: specExampleYAML, path: "cluster.yml")
        #expect(inventory.path == "cluster.yml")
        #expect(inventory.domain == "example.com")
        #expect(inventory.subject == SubjectAttributes(c: "US", st: "MyState", l: "MyCity", o: "MyCompany",
                                                       ou: "MyOrganizationalUnit"))
        #expect(inventory.subject.encodingOrder.map(\.name) == ["C", "ST", "L", "O", "OU"])
        #expect(inventory.subject.encodingOrder.map(\.value) == ["US", "MyState", "MyCity", "MyCompany", "MyOrganizationalUnit"])
        #expect(inventory.ca == CASettings(commonName: "Cinc Root CA", key: .ecP384, validity: Period(amount: 10, unit: .years)))
        #expect(inventory.defaults == Defaults(key: .ecP256, validity: Period(amount: 397, unit: .days),
                                               renewBefore: Period(amount: 30, unit: .days)))

        #expect(inventory.hosts == [
            Host(name: "backend-1.example.com", ips: [ip("10.0.0.1")], groups: ["backend"]),
            Host(name: "frontend-1.example.com", ips: [ip("10.0.0.11")], groups: ["frontend"]),
            Host(name: "haproxy-1.example.com", ips: [ip("10.0.0.21")], groups: ["balancer"]),
        ])
        #expect(inventory.hosts.map(\.shortName) == ["backend-1", "frontend-1", "haproxy-1"])

        #expect(inventory.vips == [
            VIP(name: "cinc-opensearch-cluster", fqdn: "cinc-opensearch-cluster.example.com", ips: [ip("10.0.0.100")]),
            VIP(name: "cinc-minio-cluster", fqdn: "cinc-minio-cluster.example.com", ips: [ip("10.0.0.100")]),
            VIP(name: "cinc-server-cluster", fqdn: "cinc-server-cluster.example.com", ips: [ip("10.0.0.101")]),
        ])

        #expect(inventory.services.map(\.name) == ["opensearch", "patroni", "etcd", "minio", "nginx", "haproxy"])
        let opensearch = try #require(inventory.service(named: "opensearch"))
        #expect(opensearch == Service(name: "opensearch", hostSelector: .group("backend"),
                                      hostNames: ["backend-1.example.com"], key: .rsa2048, effectiveKey: .rsa2048,
                                      validity: nil, enableServer: true, serverCertMode: .both, enableClient: false,
                                      clientCertMode: .client, clientCN: .short,
                                      extraSAN: ["cinc-opensearch-cluster.example.com"]))
        let patroni = try #require(inventory.service(named: "patroni"))
        #expect(patroni.key == nil)
        #expect(patroni.effectiveKey == .ecP256)
        #expect(patroni.extraSAN == ["cinc-postgresql-cluster.example.com"])
        #expect(patroni.enableClient == true)
        #expect(patroni.serverCertMode == .server)
        #expect(inventory.service(named: "etcd")?.serverCertMode == .both)
        #expect(inventory.service(named: "nginx")?.hostNames == ["frontend-1.example.com"])
        #expect(inventory.service(named: "nginx")?.extraSAN == ["cinc-server-cluster.example.com"])
        let haproxy = try #require(inventory.service(named: "haproxy"))
        #expect(inventory.hosts(of: haproxy).map(\.name) == ["haproxy-1.example.com"])
        #expect(haproxy.extraSAN == [])
        #expect(inventory.service(named: "nosuch") == nil)

        #expect(inventory.admin == Admin(name: "admin"))
        #expect(inventory.allIPs.map(\.description) == ["10.0.0.1", "10.0.0.11", "10.0.0.21", "10.0.0.100", "10.0.0.101"])
        #expect(inventory.groups == ["backend", "frontend", "balancer"])
        #expect(inventory.host(named: "BACKEND-1.example.com")?.name == "backend-1.example.com")
        #expect(inventory.host(named: "haproxy-1")?.name == "haproxy-1.example.com")
        #expect(inventory.host(named: "nope") == nil)
        #expect(inventory.vip(named: "cinc-server-cluster")?.ips == [ip("10.0.0.101")])
    }

    @Test func opensearchDefaultsToRSAEvenWhenTheDefaultKeyIsEd25519() throws {
        let yaml = baseYAML + """
        defaults:
          key: ed25519
        services:
          opensearch: { hosts: backend }
          patroni: { hosts: backend }

        """
        let inventory = try Inventory.parse(yaml: yaml, path: "cluster.yml")
        #expect(inventory.service(named: "opensearch")?.effectiveKey == .rsa2048)
        #expect(inventory.service(named: "opensearch")?.key == nil)
        #expect(inventory.service(named: "patroni")?.effectiveKey == .ed25519)
    }

    @Test func minimalInventoryGetsAllDefaults() throws {
        let inventory = try Inventory.parse(yaml: baseYAML, path: "c.yml")
        #expect(inventory.subject == SubjectAttributes())
        #expect(inventory.subject.encodingOrder == [])
        #expect(inventory.ca == CASettings(commonName: "chpki Root CA", key: nil, validity: nil))
        #expect(inventory.defaults == Defaults(key: .ecP256, validity: Period(amount: 397, unit: .days),
                                               renewBefore: Period(amount: 30, unit: .days)))
        #expect(inventory.vips == [])
        #expect(inventory.services == [])
        #expect(inventory.admin.name == "admin")
    }

    @Test func emptyOptionalSectionsMeanDefaults() throws {
        let inventory = try Inventory.parse(yaml: baseYAML + "vips:\nservices:\nadmin:\nsubject:\n", path: "c.yml")
        #expect(inventory.vips == [])
        #expect(inventory.services == [])
        #expect(inventory.admin.name == "admin")
        #expect(inventory.subject == SubjectAttributes())
    }

    @Test func ipv6HostAndMixedAddresses() throws {
        let yaml = """
        domain: Example.COM
        hosts:
          - name: Node-1.Example.com
            ips: ["2001:DB8::1", 192.0.2.1, "::ffff:192.0.2.200"]
            groups: [db]
          - name: node-2.example.com
            ips: ["2001:db8:0:0:1:0:0:1"]
            groups: [db]
        services:
          postgres: { hosts: [node-1, node-2.example.com], client_cn: fqdn }

        """
        let inventory = try Inventory.parse(yaml: yaml, path: "cluster.yml")
        #expect(inventory.domain == "example.com")
        #expect(inventory.hosts[0].name == "node-1.example.com")
        #expect(inventory.hosts[0].ips.map(\.description) == ["2001:db8::1", "192.0.2.1", "::ffff:192.0.2.200"])
        #expect(inventory.hosts[0].ips[0].isV6)
        #expect(inventory.hosts[0].ips[0].bytes == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        #expect(!inventory.hosts[0].ips[1].isV6)
        #expect(inventory.hosts[0].ips[1].bytes == [192, 0, 2, 1])
        #expect(inventory.hosts[1].ips.map(\.description) == ["2001:db8::1:0:0:1"])
        let postgres = try #require(inventory.service(named: "postgres"))
        #expect(postgres.hostSelector == .hosts(["node-1", "node-2.example.com"]))
        #expect(postgres.hostNames == ["node-1.example.com", "node-2.example.com"])
        #expect(postgres.clientCN == .fqdn)
    }

    @Test func subjectValuesMayContainDNSpecialCharacters() throws {
        let yaml = baseYAML + """
        subject:
          O: "Acme, Inc."
          OU: 'R+D "Labs" <east>; #1'
          L: Zürich
          C: ch

        """
        let inventory = try Inventory.parse(yaml: yaml, path: "cluster.yml")
        #expect(inventory.subject.o == "Acme, Inc.")
        #expect(inventory.subject.ou == "R+D \"Labs\" <east>; #1")
        #expect(inventory.subject.l == "Zürich")
        #expect(inventory.subject.c == "CH")
        #expect(inventory.subject.st == nil)
        #expect(inventory.subject.encodingOrder == [
            DNAttribute(name: "C", value: "CH"), DNAttribute(name: "L", value: "Zürich"),
            DNAttribute(name: "O", value: "Acme, Inc."), DNAttribute(name: "OU", value: "R+D \"Labs\" <east>; #1"),
        ])
    }

    @Test func countryCodeThatYAMLWouldReadAsBooleanStaysText() throws {
        // `NO` (Norway) is a YAML 1.1 boolean; the reader keeps the text as written.
        let inventory = try Inventory.parse(yaml: baseYAML + "subject:\n  C: NO\n  O: 1234\n", path: "c.yml")
        #expect(inventory.subject.c == "NO")
        #expect(inventory.subject.o == "1234")
    }

    @Test func minicluster() throws {
        let path = examplesDirectory.appendingPathComponent("minicluster.yml").path
        let inventory = try Inventory.load(path: path)
        #expect(inventory.path == path)
        #expect(inventory.domain == "infra.example.org")
        #expect(inventory.subject.c == "NL")
        #expect(inventory.subject.o == "Example Collective, Inc.")
        #expect(inventory.hosts.map(\.name) == ["core-1.infra.example.org", "core-2.infra.example.org",
                                                 "worker-1.infra.example.org"])
        #expect(inventory.hosts[0].ips == [ip("192.0.2.10"), ip("2001:db8::10")])
        #expect(inventory.services.map(\.name) == ["myservice", "prometheus", "log-collector", "auth-server"])

        let myservice = try #require(inventory.service(named: "myservice"))
        #expect(myservice.hostNames == ["core-1.infra.example.org", "core-2.infra.example.org"])
        #expect(myservice.enableClient == false)
        #expect(myservice.enableServer == true)

        let prometheus = try #require(inventory.service(named: "prometheus"))
        #expect(prometheus.hostSelector == .hosts(["core-1"]))
        #expect(prometheus.hostNames == ["core-1.infra.example.org"])
        #expect(prometheus.clientCertMode == .both)
        #expect(prometheus.extraSAN == ["monitoring.infra.example.org", "alertmanager.infra.example.org"])

        let collector = try #require(inventory.service(named: "log-collector"))
        #expect(collector.hostNames == ["core-1.infra.example.org", "worker-1.infra.example.org"])
        #expect(collector.enableServer == false)
        #expect(collector.clientCN == .fqdn)
        #expect(collector.validity == Period(amount: 90, unit: .days))

        let auth = try #require(inventory.service(named: "auth-server"))
        #expect(auth.hostSelector == .group("frontend"))
        #expect(auth.hostNames == ["core-1.infra.example.org"])
        #expect(auth.effectiveKey == .ed25519)
        #expect(auth.serverCertMode == .both)
        #expect(auth.extraSAN == ["login.infra.example.org"])
    }

    @Test func reference000Example() throws {
        let inventory = try Inventory.load(path: examplesDirectory.appendingPathComponent("reference-000.yml").path)
        #expect(inventory.domain == "example.com")
        #expect(inventory.hosts.map(\.shortName) == ["backend-1", "backend-2", "backend-3", "backend-4",
                                                      "frontend-1", "frontend-2", "haproxy-1", "haproxy-2"])
        #expect(inventory.hosts.map { $0.ips.map(\.description) } == [["10.0.0.1"], ["10.0.0.2"], ["10.0.0.3"], ["10.0.0.4"],
                                                                      ["10.0.0.11"], ["10.0.0.12"], ["10.0.0.21"], ["10.0.0.22"]])
        #expect(inventory.vips.map(\.fqdn) == ["cinc-opensearch-cluster.example.com", "cinc-minio-cluster.example.com",
                                               "cinc-server-cluster.example.com"])
        #expect(inventory.services.map(\.name) == ["opensearch", "patroni", "etcd", "minio", "nginx", "haproxy"])
        let backends = ["backend-1.example.com", "backend-2.example.com", "backend-3.example.com", "backend-4.example.com"]
        for name in ["opensearch", "patroni", "etcd", "minio"] {
            #expect(inventory.service(named: name)?.hostNames == backends)
        }
        #expect(inventory.service(named: "nginx")?.hostNames == ["frontend-1.example.com", "frontend-2.example.com"])
        #expect(inventory.service(named: "haproxy")?.hostNames == ["haproxy-1.example.com", "haproxy-2.example.com"])
        #expect(inventory.service(named: "opensearch")?.effectiveKey == .rsa2048)
        #expect(inventory.service(named: "patroni")?.effectiveKey == .ecP256)
        #expect(inventory.subject.encodingOrder.map(\.value) == ["US", "MyState", "MyCity", "MyCompany", "MyOrganizationalUnit"])
        #expect(inventory.allIPs.count == 10)
    }

    @Test func loopbackExample() throws {
        let inventory = try Inventory.load(path: examplesDirectory.appendingPathComponent("loopback.yml").path)
        #expect(inventory.domain == "chpki.test")
        #expect(inventory.hosts.map(\.name) == ["backend-1.chpki.test", "backend-2.chpki.test", "backend-3.chpki.test",
                                                 "frontend-1.chpki.test", "haproxy-1.chpki.test"])
        #expect(inventory.allIPs.map(\.description) == ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.11",
                                                         "127.0.0.21", "127.0.0.100"])
        #expect(inventory.vips.allSatisfy { $0.ips == [ip("127.0.0.100")] })
        #expect(inventory.service(named: "opensearch")?.hostNames.count == 3)
        #expect(inventory.defaults.validity == Period(amount: 90, unit: .days))
        #expect(inventory.ca.commonName == "chpki Test Root CA")
    }

    @Test func extraSANAndVIPNamesAlreadyEndingWithTheDomainAreKept() throws {
        let yaml = baseYAML + """
        vips:
          - name: lb.example.com
            ips: [10.0.0.100]
        services:
          web: { hosts: frontend, extra_san: [www.example.com, api, a.b] }

        """
        let inventory = try Inventory.parse(yaml: yaml, path: "c.yml")
        #expect(inventory.vips[0].name == "lb.example.com")
        #expect(inventory.vips[0].fqdn == "lb.example.com")
        #expect(inventory.service(named: "web")?.extraSAN == ["www.example.com", "api.example.com", "a.b.example.com"])
    }

    @Test func yamlAliasesAreResolved() throws {
        let yaml = baseYAML + "services:\n  a: &common { hosts: frontend, key: ec-p384 }\n  b: *common\n"
        let inventory = try Inventory.parse(yaml: yaml, path: "c.yml")
        #expect(inventory.service(named: "b")?.effectiveKey == .ecP384)
        #expect(inventory.service(named: "b")?.hostNames == ["frontend-1.example.com"])
    }

    @Test func serviceNameAttributeEqualToTheKeyIsAccepted() throws {
        let inventory = try Inventory.parse(yaml: baseYAML + "services:\n  web: { name: web, hosts: frontend }\n", path: "c.yml")
        #expect(inventory.service(named: "web")?.hostNames == ["frontend-1.example.com"])
    }

    @Test func missingFileIsAnInputError() {
        #expect(throws: ChpkiError.input(.fileMissing, file: "/nonexistent/cluster.yml", field: nil,
                                         "no such inventory file (set --inventory or CHPKI_INVENTORY)")) {
            try Inventory.load(path: "/nonexistent/cluster.yml")
        }
    }
}

// MARK: - Bad inventories

struct BadInput: Sendable, CustomTestStringConvertible {
    let label: String
    let yaml: String
    /// The start of the message: `cluster.yml:LINE: FIELD: ` (or `cluster.yml:LINE: ` without a field).
    let prefix: String
    /// A piece of the reason that must appear after the prefix.
    let reason: String

    var testDescription: String { label }
}

let badInputs: [BadInput] = [
    BadInput(label: "YAML syntax error", yaml: "domain: example.com\nhosts:\n  - name: [unclosed\n",
             prefix: "cluster.yml:4: ", reason: "not valid YAML"),
    BadInput(label: "empty file", yaml: "# only a comment\n", prefix: "cluster.yml:1: ", reason: "the inventory is empty"),
    BadInput(label: "top level is a list", yaml: "- domain: example.com\n", prefix: "cluster.yml:1: ",
             reason: "expected a mapping (domain:, hosts:, ...) at the top level, found a list"),
    BadInput(label: "duplicate key", yaml: "domain: example.com\ndomain: example.org\n", prefix: "cluster.yml:2: ",
             reason: "duplicate key 'domain'"),
    BadInput(label: "unknown top-level key with suggestion", yaml: baseYAML + "servces:\n  web: { hosts: frontend }\n",
             prefix: "cluster.yml:9: servces: ", reason: "unknown key; did you mean services?"),
    BadInput(label: "missing domain", yaml: "hosts:\n  - name: a.example.com\n", prefix: "cluster.yml:1: domain: ",
             reason: "missing"),
    BadInput(label: "invalid domain", yaml: "domain: exa_mple.com\nhosts: []\n", prefix: "cluster.yml:1: domain: ",
             reason: "label 'exa_mple' contains '_'"),
    BadInput(label: "domain with trailing dot", yaml: "domain: example.com.\nhosts: []\n", prefix: "cluster.yml:1: domain: ",
             reason: "must not end with a dot"),
    BadInput(label: "missing hosts", yaml: "domain: example.com\n", prefix: "cluster.yml:1: hosts: ", reason: "missing"),
    BadInput(label: "empty hosts", yaml: "domain: example.com\nhosts: []\n", prefix: "cluster.yml:2: hosts: ",
             reason: "the list is empty"),
    BadInput(label: "host is not a mapping", yaml: "domain: example.com\nhosts:\n  - backend-1.example.com\n",
             prefix: "cluster.yml:3: hosts[0]: ", reason: "expected a host (name: FQDN"),
    BadInput(label: "host without name", yaml: "domain: example.com\nhosts:\n  - ips: [10.0.0.1]\n",
             prefix: "cluster.yml:3: hosts[0].name: ", reason: "missing"),
    BadInput(label: "host name not fully qualified",
             yaml: "domain: example.com\nhosts:\n  - name: backend-1\n",
             prefix: "cluster.yml:3: hosts[0].name: ", reason: "not fully qualified; write the FQDN, e.g. backend-1.example.com"),
    BadInput(label: "host name with underscore",
             yaml: baseYAML + "  - name: db_1.example.com\n",
             prefix: "cluster.yml:9: hosts[2].name: ", reason: "label 'db_1' contains '_'"),
    BadInput(label: "host label starting with hyphen",
             yaml: baseYAML + "  - name: -db.example.com\n",
             prefix: "cluster.yml:9: hosts[2].name: ", reason: "must not start or end with '-'"),
    BadInput(label: "host label too long",
             yaml: baseYAML + "  - name: \(String(repeating: "a", count: 64)).example.com\n",
             prefix: "cluster.yml:9: hosts[2].name: ", reason: "longer than 63 characters"),
    BadInput(label: "host outside the domain",
             yaml: baseYAML + "  - name: db-1.example.org\n",
             prefix: "cluster.yml:9: hosts[2].name: ", reason: "not a host name under the domain example.com"),
    BadInput(label: "duplicate host",
             yaml: baseYAML + "  - name: Backend-1.example.com\n",
             prefix: "cluster.yml:9: hosts[2].name: ", reason: "duplicate host backend-1.example.com (also hosts[0])"),
    BadInput(label: "duplicate short name",
             yaml: baseYAML + "  - name: backend-1.dc2.example.com\n",
             prefix: "cluster.yml:9: hosts[2].name: ", reason: "short name 'backend-1' is also the short name of hosts[0]"),
    BadInput(label: "unknown host key with suggestion",
             yaml: baseYAML + "  - name: db-1.example.com\n    ip: [10.0.0.5]\n",
             prefix: "cluster.yml:10: hosts[2].ip: ", reason: "unknown key; did you mean ips?"),
    BadInput(label: "IPv4 octet out of range",
             yaml: baseYAML + "  - name: db-1.example.com\n    ips: [10.0.0.5, 10.0.0.256]\n",
             prefix: "cluster.yml:10: hosts[2].ips[1]: ", reason: "'10.0.0.256' is not an IPv4 address"),
    BadInput(label: "IPv4 leading zero",
             yaml: baseYAML + "  - name: db-1.example.com\n    ips: [010.0.0.5]\n",
             prefix: "cluster.yml:10: hosts[2].ips[0]: ", reason: "leading zeros"),
    BadInput(label: "CIDR suffix",
             yaml: baseYAML + "  - name: db-1.example.com\n    ips: [10.0.0.0/24]\n",
             prefix: "cluster.yml:10: hosts[2].ips[0]: ", reason: "without a /prefix length"),
    BadInput(label: "IPv6 zone id",
             yaml: baseYAML + "  - name: db-1.example.com\n    ips: [\"fe80::1%eth0\"]\n",
             prefix: "cluster.yml:10: hosts[2].ips[0]: ", reason: "zone ids"),
    BadInput(label: "malformed IPv6",
             yaml: baseYAML + "  - name: db-1.example.com\n    ips: [\"2001:db8::1::2\"]\n",
             prefix: "cluster.yml:10: hosts[2].ips[0]: ", reason: "is not an IP address"),
    BadInput(label: "ips as a string instead of a list",
             yaml: baseYAML + "  - name: db-1.example.com\n    ips: 10.0.0.5\n",
             prefix: "cluster.yml:10: hosts[2].ips: ", reason: "expected a list of IP addresses, found '10.0.0.5'"),
    BadInput(label: "duplicate IP across hosts",
             yaml: baseYAML + "  - name: db-1.example.com\n    ips: [10.0.0.5, 10.0.0.11]\n",
             prefix: "cluster.yml:10: hosts[2].ips[1]: ",
             reason: "10.0.0.11 is already an address of hosts[1] (frontend-1.example.com)"),
    BadInput(label: "same IP twice on one host",
             yaml: baseYAML + "  - name: db-1.example.com\n    ips: [\"2001:db8::5\", \"2001:DB8:0::5\"]\n",
             prefix: "cluster.yml:10: hosts[2].ips[1]: ", reason: "2001:db8::5 is listed twice"),
    BadInput(label: "VIP address of a host",
             yaml: baseYAML + "vips:\n  - name: lb\n    ips: [10.0.0.100]\n  - name: lb2\n    ips: [10.0.0.1]\n",
             prefix: "cluster.yml:13: vips[1].ips[0]: ", reason: "10.0.0.1 is an address of host backend-1.example.com"),
    BadInput(label: "VIP without addresses",
             yaml: baseYAML + "vips:\n  - name: lb\n",
             prefix: "cluster.yml:10: vips[0].ips: ", reason: "missing"),
    BadInput(label: "invalid VIP name",
             yaml: baseYAML + "vips:\n  - name: lb cluster\n    ips: [10.0.0.100]\n",
             prefix: "cluster.yml:10: vips[0].name: ", reason: "contains whitespace"),
    BadInput(label: "country of three letters",
             yaml: baseYAML + "subject:\n  O: Acme\n  C: USA\n",
             prefix: "cluster.yml:11: subject.C: ", reason: "'USA' is not a country code: expected two letters"),
    BadInput(label: "subject value too long",
             yaml: baseYAML + "subject:\n  O: \(String(repeating: "x", count: 65))\n",
             prefix: "cluster.yml:10: subject.O: ", reason: "is 65 characters long; at most 64"),
    BadInput(label: "subject value with a control character",
             yaml: baseYAML + "subject:\n  OU: \"a\\tb\"\n",
             prefix: "cluster.yml:10: subject.OU: ", reason: "control characters"),
    BadInput(label: "empty subject value",
             yaml: baseYAML + "subject:\n  O: \"\"\n",
             prefix: "cluster.yml:10: subject.O: ", reason: "must not be empty"),
    BadInput(label: "CN in subject",
             yaml: baseYAML + "subject:\n  CN: x\n",
             prefix: "cluster.yml:10: subject.CN: ", reason: "unknown key; the CN is set per certificate"),
    BadInput(label: "unknown key type",
             yaml: baseYAML + "defaults:\n  key: rsa-1024\n",
             prefix: "cluster.yml:10: defaults.key: ", reason: "unknown key type 'rsa-1024'; expected one of rsa-2048, rsa-3072"),
    BadInput(label: "bad period",
             yaml: baseYAML + "ca:\n  validity: 10 years\n",
             prefix: "cluster.yml:10: ca.validity: ", reason: "'10 years' is not a period: expected \(Period.help)"),
    BadInput(label: "renew_before not shorter than validity",
             yaml: baseYAML + "defaults:\n  validity: 4w\n  renew_before: 28d\n",
             prefix: "cluster.yml:11: defaults.renew_before: ", reason: "renew_before (28d) must be shorter than validity (4w)"),
    BadInput(label: "service validity shorter than renew_before",
             yaml: baseYAML + "services:\n  web: { hosts: frontend, validity: 20d }\n",
             prefix: "cluster.yml:10: services.web.validity: ",
             reason: "validity (20d) must be longer than defaults.renew_before (30d)"),
    BadInput(label: "opensearch with ed25519",
             yaml: baseYAML + "services:\n  opensearch:\n    hosts: backend\n    key: ed25519\n",
             prefix: "cluster.yml:12: services.opensearch.key: ", reason: "cannot load Ed25519"),
    BadInput(label: "unknown group",
             yaml: baseYAML + "services:\n  web: { hosts: frontends }\n",
             prefix: "cluster.yml:10: services.web.hosts: ",
             reason: "no host is in group 'frontends' (known groups: backend, frontend)"),
    BadInput(label: "unknown host in a list",
             yaml: baseYAML + "services:\n  web:\n    hosts: [frontend-1, frontend-2]\n",
             prefix: "cluster.yml:11: services.web.hosts[1]: ",
             reason: "unknown host 'frontend-2' (known hosts: backend-1.example.com, frontend-1.example.com)"),
    BadInput(label: "service with no hosts",
             yaml: baseYAML + "services:\n  web:\n    hosts: []\n",
             prefix: "cluster.yml:11: services.web.hosts: ", reason: "a service needs at least one host"),
    BadInput(label: "service without hosts key",
             yaml: baseYAML + "services:\n  web:\n    key: ec-p384\n",
             prefix: "cluster.yml:11: services.web.hosts: ", reason: "missing"),
    BadInput(label: "service key typo",
             yaml: baseYAML + "services:\n  web:\n    hosts: frontend\n    extra_sans: [www]\n",
             prefix: "cluster.yml:12: services.web.extra_sans: ", reason: "unknown key; did you mean extra_san?"),
    BadInput(label: "minicluster scheduling_group",
             yaml: baseYAML + "services:\n  web:\n    scheduling_group: frontend\n",
             prefix: "cluster.yml:11: services.web.scheduling_group: ", reason: "chpki uses hosts: <group>"),
    BadInput(label: "YAML merge key",
             yaml: baseYAML + "services:\n  a: &x { hosts: frontend }\n  b: { <<: *x, key: rsa-2048 }\n",
             prefix: "cluster.yml:11: services.b.<<: ", reason: "YAML merge keys (<<) are not supported"),
    BadInput(label: "service named like a host",
             yaml: baseYAML + "services:\n  backend-1: { hosts: frontend }\n",
             prefix: "cluster.yml:10: services.backend-1: ",
             reason: "the service name backend-1.example.com is also the name of host backend-1.example.com"),
    BadInput(label: "duplicate VIP",
             yaml: baseYAML + "vips:\n  - {name: a, ips: [10.0.0.100]}\n  - {name: A.example.com, ips: [10.0.0.100]}\n",
             prefix: "cluster.yml:11: vips[1].name: ", reason: "duplicate VIP a.example.com (also vips[0])"),
    BadInput(label: "host name given as a group string",
             yaml: baseYAML + "services:\n  web: { hosts: frontend-1.example.com }\n",
             prefix: "cluster.yml:10: services.web.hosts: ",
             reason: "no host is in group 'frontend-1.example.com' (known groups: backend, frontend); to name hosts, write a list: [frontend-1.example.com]"),
    BadInput(label: "tab indentation", yaml: "domain: example.com\nhosts:\n\t- name: x\n",
             prefix: "cluster.yml:3: ", reason: "not valid YAML: found character that cannot start any token"),
    BadInput(label: "second document", yaml: "domain: example.com\n---\nhosts: []\n",
             prefix: "cluster.yml:2: ", reason: "expected a single document"),
    BadInput(label: "null hosts", yaml: "domain: example.com\nhosts:\n",
             prefix: "cluster.yml:2: hosts: ", reason: "expected a list of hosts (- name: FQDN, ips: [...], groups: [...]), found nothing"),
    BadInput(label: "bad cert mode",
             yaml: baseYAML + "services:\n  web: { hosts: frontend, server_cert_mode: mutual }\n",
             prefix: "cluster.yml:10: services.web.server_cert_mode: ", reason: "'mutual' is not one of client, server, both"),
    BadInput(label: "bad client_cn",
             yaml: baseYAML + "services:\n  web: { hosts: frontend, client_cn: long }\n",
             prefix: "cluster.yml:10: services.web.client_cn: ", reason: "'long' is not one of short, fqdn"),
    BadInput(label: "boolean expected",
             yaml: baseYAML + "services:\n  web:\n    hosts: frontend\n    enable_client: \"false\"\n",
             prefix: "cluster.yml:12: services.web.enable_client: ", reason: "expected true or false, found 'false'"),
    BadInput(label: "service name attribute differs",
             yaml: baseYAML + "services:\n  web:\n    name: www\n    hosts: frontend\n",
             prefix: "cluster.yml:11: services.web.name: ", reason: "'www' differs from the service key 'web'"),
    BadInput(label: "invalid service name",
             yaml: baseYAML + "services:\n  Open_Search: { hosts: backend }\n",
             prefix: "cluster.yml:10: services.Open_Search: ", reason: "is not a valid service name"),
    BadInput(label: "services as a list",
             yaml: baseYAML + "services:\n  - opensearch\n",
             prefix: "cluster.yml:10: services: ", reason: "expected a mapping of service name to its settings"),
    BadInput(label: "invalid extra_san",
             yaml: baseYAML + "services:\n  web: { hosts: frontend, extra_san: [www, \"*.apps\"] }\n",
             prefix: "cluster.yml:10: services.web.extra_san[1]: ", reason: "wildcard names are not allowed"),
    BadInput(label: "extra_san as a string",
             yaml: baseYAML + "services:\n  web: { hosts: frontend, extra_san: www }\n",
             prefix: "cluster.yml:10: services.web.extra_san: ", reason: "write a list, e.g. [www]"),
    BadInput(label: "admin named like a node",
             yaml: baseYAML + "admin:\n  name: backend-1.example.com\n",
             prefix: "cluster.yml:10: admin.name: ", reason: "is the name of host backend-1.example.com"),
    BadInput(label: "empty admin name",
             yaml: baseYAML + "admin:\n  name: \"\"\n",
             prefix: "cluster.yml:10: admin.name: ", reason: "must not be empty"),
    BadInput(label: "null where a string is expected",
             yaml: baseYAML + "admin:\n  name:\n",
             prefix: "cluster.yml:10: admin.name: ", reason: "expected a string, found nothing"),
]

@Suite struct InventoryErrorTests {
    @Test(arguments: badInputs)
    func badInputIsRejectedWithLineAndField(_ input: BadInput) {
        let message = parseError(input.yaml)
        #expect(message.hasPrefix(input.prefix), "got: \(message)")
        #expect(message.dropFirst(input.prefix.count).contains(input.reason), "got: \(message)")
        #expect(!message.contains("\n"), "one line: \(message)")
    }

    @Test func everyBadInputHasADistinctLabel() {
        #expect(Set(badInputs.map(\.label)).count == badInputs.count)
        #expect(badInputs.count >= 15)
    }

    /// Damaged variants of the SPEC example (each line deleted; the text cut at many points) either
    /// parse or throw a ChpkiError with the file name: never crash, never another error type.
    @Test func damagedInventoriesNeverCrash() {
        let lines = specExampleYAML.components(separatedBy: "\n")
        var variants: [String] = lines.indices.map { index in
            var copy = lines
            copy.remove(at: index)
            return copy.joined(separator: "\n")
        }
        var cut = specExampleYAML.startIndex
        while cut < specExampleYAML.endIndex {
            variants.append(String(specExampleYAML[..<cut]))
            cut = specExampleYAML.index(cut, offsetBy: 13, limitedBy: specExampleYAML.endIndex) ?? specExampleYAML.endIndex
        }
        var rejected = 0
        for variant in variants {
            let message = parseError(variant)
            if message == "<no error>" { continue }
            rejected += 1
            #expect(message.hasPrefix("cluster.yml"), "\(message)")
            #expect(!message.hasPrefix("<not a ChpkiError"), "\(message)")
        }
        #expect(rejected > 0)
    }
}

// MARK: - Addresses and names

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("10.0.0.1", "10.0.0.1", [UInt8]([10, 0, 0, 1])),
        ("0.0.0.0", "0.0.0.0", [0, 0, 0, 0]),
        ("255.255.255.255", "255.255.255.255", [255, 255, 255, 255]),
        ("::1", "::1", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        ("::", "::", [UInt8](repeating: 0, count: 16)),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        ("fe80::", "fe80::", [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1", [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3", [0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3]),
        ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4", [0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4]),
        ("1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0", [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0]),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221", [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 33]),
    ])
    func parsesAndPrintsCanonically(_ text: String, _ canonical: String, _ bytes: [UInt8]) throws {
        let address = try #require(IPAddress(text))
        #expect(address.bytes == bytes)
        #expect(address.description == canonical)
        #expect(address.isV6 == (bytes.count == 16))
        #expect(IPAddress(canonical) == address)
    }

    @Test(arguments: ["", "10.0.0", "10.0.0.1.2", "10.0.0.256", "010.0.0.1", "10.0.0.01", "10.0.0.1/32",
                      " 10.0.0.1", "10.0.0.1 ", "+1.2.3.4", "1.2.3.-4", "0x0a.0.0.1", "1..2.3",
                      "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", ":1:2:3:4:5:6:7", "12345::1",
                      "fe80::1%eth0", "[::1]", "::1/128", "g::1", "::ffff:10.0.0.256", "::10.0.0.1:1", "1:2:3:4:5:6:7::8:9",
                      "localhost", "١٢.0.0.1"])
    func rejects(_ text: String) {
        #expect(IPAddress(text) == nil)
        #expect(IPAddress.problem(with: text) != nil)
    }

    @Test func compressedGroupsFillTheMiddle() {
        #expect(IPAddress("1:2:3:4:5:6::8")?.description == "1:2:3:4:5:6:0:8")
        #expect(IPAddress("1::8")?.bytes == [0, 1] + [UInt8](repeating: 0, count: 12) + [0, 8])
    }

    @Test func orderingPutsIPv4First() {
        let sorted = [ip("::1"), ip("10.0.0.2"), ip("10.0.0.1")].sorted()
        #expect(sorted.map(\.description) == ["10.0.0.1", "10.0.0.2", "::1"])
    }

    @Test func initFromBytes() {
        #expect(IPAddress(bytes: [127, 0, 0, 1])?.description == "127.0.0.1")
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
    }
}

@Suite struct HostNameTests {
    @Test(arguments: ["example.com", "a.b", "x", "Backend-1.Example.COM", "1a.example.com", "a-b-c.d9",
                      String(repeating: "a", count: 63) + ".com"])
    func valid(_ name: String) {
        #expect(HostName.problem(with: name) == nil)
    }

    @Test(arguments: [
        ("", "must not be empty"),
        ("example.com.", "must not end with a dot"),
        (".example.com", "must not start with a dot"),
        ("a..b", "empty label"),
        ("-a.com", "must not start or end with '-'"),
        ("a-.com", "must not start or end with '-'"),
        ("a_b.com", "contains '_'"),
        ("a b.com", "whitespace"),
        ("é.com", "contains 'é'"),
        ("*.example.com", "wildcard"),
        ("10.0.0.1", "looks like an IP address"),
        (String(repeating: "a", count: 64) + ".com", "longer than 63"),
        (Array(repeating: String(repeating: "a", count: 60), count: 5).joined(separator: "."), "longer than 253"),
    ])
    func invalid(_ name: String, _ reason: String) throws {
        let problem = try #require(HostName.problem(with: name))
        #expect(problem.contains(reason), "\(problem)")
    }

    @Test func suggestions() {
        let keys = InventoryReader.serviceKeys
        #expect(KeySuggestion.nearest(to: "extra_sans", among: keys) == "extra_san")
        #expect(KeySuggestion.nearest(to: "enable-client", among: keys) == "enable_client")
        #expect(KeySuggestion.nearest(to: "kye", among: keys) == "key")
        #expect(KeySuggestion.nearest(to: "ou", among: InventoryReader.subjectKeys) == "OU")
        #expect(KeySuggestion.nearest(to: "something_else", among: keys) == nil)
    }
}
