import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiBundles
@testable import ChpkiCA
@testable import ChpkiInventory

/// Cluster membership on growth (SPEC §7 Growth), without a CA: etcd's joiners and leavers from the
/// install records, MinIO's pool rules and expansions, OpenSearch's nodes_dn patterns.
@Suite("Membership on growth")
struct MembershipTests {
    static func host(_ n: Int, _ name: String = "backend") -> ChpkiCore.Host {
        ChpkiCore.Host(name: "\(name)-\(n).example.com", ips: [IPAddress("10.0.0.\(n)")!], groups: ["backend"])
    }

    static func installed(_ hosts: [String], service: String = "etcd") -> InstalledServices {
        let file = BundleManifest.File(path: "etc/etcd/pki/ca.pem", sha256: String(repeating: "0", count: 64), owner: "etcd",
                                       group: "etcd", mode: "0644", service: service)
        let records = Dictionary(uniqueKeysWithValues: hosts.map {
            ($0, BundleManifest(host: $0, services: [service], caSHA256: String(repeating: "0", count: 64), directories: [], files: [file]))
        })
        return InstalledServices(directory: "state", previousOutput: nil, records: records)
    }

    @Test("no record: a new cluster, every host listed, no etcdctl step")
    func newCluster() {
        let membership = EtcdMembership(hosts: (1...3).map { Self.host($0) }, installed: .none)
        #expect(membership.isNew && membership.joiners.isEmpty)
        #expect(membership.state(for: "backend-2.example.com") == "new")
        #expect(membership.initialCluster(for: "backend-2.example.com").split(separator: ",").count == 3)
        #expect(membership.steps(clientCertificate: "c", clientKey: "k").isEmpty)
    }

    @Test("joiners list the members, the joiners before them and themselves; removals come first")
    func joinersAndLeavers() {
        let hosts = [Self.host(1), Self.host(2), Self.host(4), Self.host(5)]
        let membership = EtcdMembership(hosts: hosts, installed: Self.installed(["backend-1.example.com", "backend-2.example.com", "backend-3.example.com"]))
        #expect(membership.members.map(\.name) == ["backend-1.example.com", "backend-2.example.com"])
        #expect(membership.joiners.map(\.name) == ["backend-4.example.com", "backend-5.example.com"])
        #expect(membership.leaving == ["backend-3.example.com"])
        #expect(membership.state(for: "backend-4.example.com") == "existing")
        #expect(membership.initialCluster(for: "backend-4.example.com")
                == "backend-1.example.com=https://10.0.0.1:2380,backend-2.example.com=https://10.0.0.2:2380,backend-4.example.com=https://10.0.0.4:2380")
        #expect(membership.initialCluster(for: "backend-5.example.com").hasSuffix("backend-4.example.com=https://10.0.0.4:2380,backend-5.example.com=https://10.0.0.5:2380"))
        #expect(membership.initialCluster(for: "backend-1.example.com").split(separator: ",").count == 2)
        let steps = membership.steps(clientCertificate: "etc/etcd/pki/client.pem", clientKey: "etc/etcd/pki/client-key.pem")
        #expect(steps.count == 3)
        #expect(steps[0].contains("member remove") && steps[0].contains("backend-3.example.com"))
        #expect(steps[1].contains("member add backend-4.example.com --peer-urls=https://10.0.0.4:2380"))
        #expect(steps[2].contains("member add backend-5.example.com --peer-urls=https://10.0.0.5:2380"))
    }

    @Test("every installed member gone from the inventory: refused, naming them; one kept: a replacement")
    func everyMemberReplaced() throws {
        let installed = Self.installed(["backend-1.example.com", "backend-2.example.com", "backend-3.example.com"])
        let replaced = EtcdMembership(hosts: (4...6).map { Self.host($0) }, installed: installed)
        #expect(replaced.isNew && replaced.leaving.count == 3)
        let error = try #require(CATestSupport.refusal {
            try replaced.checkContinuity(inventory: "cluster.yml", state: "ca/installed")
        })
        #expect(error.code == .inventoryConflict && error.field == "services.etcd.hosts")
        #expect(error.message.contains("backend-1.example.com, backend-2.example.com, backend-3.example.com") && error.message.contains("ca/installed"))
        // one member kept: the others join it, nothing refused
        let kept = EtcdMembership(hosts: [Self.host(1)] + (5...6).map { Self.host($0) }, installed: installed)
        try kept.checkContinuity(inventory: "cluster.yml", state: "ca/installed")
        #expect(!kept.isNew && kept.joiners.count == 2)
        // no records at all: a new cluster
        try EtcdMembership(hosts: (4...6).map { Self.host($0) }, installed: .none).checkContinuity(inventory: "cluster.yml", state: nil)
    }

    @Test("MinIO pools: one {x...y} expansion per consecutive range, nothing else")
    func expansions() {
        #expect(MinIOPools.expansion(["backend-1.example.com", "backend-2.example.com", "backend-3.example.com"]) == "backend-{1...3}.example.com")
        #expect(MinIOPools.expansion(["s09.example.com", "s10.example.com"]) == "s{09...10}.example.com")
        #expect(MinIOPools.expansion(["s08.example.com", "s09.example.com"]) == "s{08...09}.example.com")
        #expect(MinIOPools.expansion(["b-1.example.com", "b-3.example.com"]) == nil)
        #expect(MinIOPools.expansion(["b-2.example.com", "b-1.example.com"]) == nil)
        #expect(MinIOPools.expansion(["a-1.example.com", "b-2.example.com"]) == nil)
        #expect(MinIOPools.expansion(["alpha.example.com", "beta.example.com"]) == nil)
        #expect(MinIOPools.expansion([]) == nil)
    }

    @Test("MinIO pools: a new pool holds twice the first pool's default parity")
    func poolSizes() {
        #expect(MinIOPools.minimumNewPool(firstPool: 4) == 4)
        #expect(MinIOPools.minimumNewPool(firstPool: 2) == 2)
        #expect(MinIOPools.minimumNewPool(firstPool: 8) == 6)
        #expect(MinIOPools.minimumNewPool(firstPool: 16) == 8)
        let names = (1...3).map { "s-\($0).example.com" }
        #expect(MinIOPools.problem(pool: 1, servers: names, firstPool: 4)?.contains("at least 4") == true)
        #expect(MinIOPools.problem(pool: 0, servers: names, firstPool: 3) == nil)
        #expect(MinIOPools.problem(pool: 0, servers: ["s-1.example.com"], firstPool: 1) != nil)
        #expect(MinIOPools.problem(pool: 0, servers: (1...17).map { "s-\($0).example.com" }, firstPool: 17)?.contains("erasure sets") == true)
    }

    @Test("nodes_dn: one pattern per naming rule, exact entries where the rule names a non-node")
    func nodesDNPatterns() throws {
        let yaml = """
            domain: example.com
            subject: {O: "My.Co, Inc"}
            hosts:
              - {name: backend-1.example.com, ips: [10.0.0.1], groups: [backend]}
              - {name: backend-2.example.com, ips: [10.0.0.2], groups: [backend]}
              - {name: search.example.com, ips: [10.0.0.3], groups: [backend]}
              - {name: db-1.example.com, ips: [10.0.0.4], groups: [backend]}
              - {name: db-2.example.com, ips: [10.0.0.5], groups: [other]}
            services:
              opensearch: {hosts: backend}
              etcd: {hosts: other}
            """
        let lists = try NodesDN(inventory: try InventoryReader(path: "cluster.yml").read(yaml: yaml))
        #expect(lists.patterns == ["/CN=backend-[0-9]+\\.example\\.com,O=My\\.Co\\\\, Inc/", "CN=search.example.com,O=My.Co\\, Inc",
                                   "CN=db-1.example.com,O=My.Co\\, Inc"])
        #expect(lists.nodesDN.count == 4)
        let pattern = lists.patterns[0]
        #expect(OpenSearchDN.matches(pattern: pattern, "cn=BACKEND-17.example.com,O=My.Co\\, Inc"))
        #expect(!OpenSearchDN.matches(pattern: pattern, "CN=backend-1xexample.com,O=My.Co\\, Inc"))
        #expect(!OpenSearchDN.matches(pattern: pattern, "CN=backend-.example.com,O=My.Co\\, Inc"))
        #expect(!OpenSearchDN.matches(pattern: pattern, "CN=admin,O=My.Co\\, Inc"))
    }

    @Test("bootstrap.env: settings only, TLS only, a state etcd knows")
    func bootstrapRules() {
        let good = "ETCD_INITIAL_CLUSTER=a=https://10.0.0.1:2380\nETCD_INITIAL_CLUSTER_STATE=existing\n"
        #expect(EtcdBundle.bootstrapFindings(good).isEmpty)
        #expect(EtcdBundle.bootstrapFindings("ETCD_INITIAL_CLUSTER_STATE=joining\n").map(\.line) == [1])
        #expect(EtcdBundle.bootstrapFindings("ETCD_INITIAL_CLUSTER=a=http://10.0.0.1:2380\n").map(\.line) == [1])
        #expect(EtcdBundle.bootstrapFindings("touch /tmp/owned\n").map(\.line) == [1])
    }
}
