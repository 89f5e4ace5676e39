import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// `ansible_inventory:` read from a file that already is `ansible-inventory --list` JSON (no
/// Ansible needed); the e2e tests run the real ansible-inventory on YAML inventories.
@Suite struct AnsibleInventoryTests {
    /// The shape ansible-inventory --list prints: parents list children, hosts are listed by the
    /// group that names them, host variables are under _meta.hostvars.
    static let listJSON = """
    {
        "_meta": {"hostvars": {
            "backend-1.example.com": {"ips": ["10.0.0.1", "2001:db8::1"]},
            "backend-2.example.com": {"ansible_host": "10.0.0.2"},
            "frontend-1.example.com": {"ips": [], "ansible_host": "frontend-1.example.com"}
        }},
        "all": {"children": ["ungrouped", "cluster"]},
        "cluster": {"children": ["backend", "frontend"]},
        "backend": {"hosts": ["backend-1.example.com", "backend-2.example.com"]},
        "frontend": {"hosts": ["frontend-1.example.com"]},
        "ungrouped": {"hosts": []}
    }
    """

    func parse(_ list: String, cluster extra: String = "") throws -> Inventory {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chpki-ansible-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try list.write(to: directory.appendingPathComponent("list.json"), atomically: true, encoding: .utf8)
        let yaml = """
        domain: example.com
        ansible_inventory: list.json
        \(extra)services:
          etcd: { hosts: backend }
          node-exporter: { hosts: cluster }
        """
        return try Inventory.parse(yaml: yaml, path: directory.appendingPathComponent("cluster.yml").path)
    }

    @Test func hostsGroupsAndIPsComeFromTheInventory() throws {
        let inventory = try parse(Self.listJSON)
        #expect(inventory.hosts.map(\.name) == ["backend-1.example.com", "backend-2.example.com", "frontend-1.example.com"])
        #expect(inventory.hosts[0].ips == [IPAddress("10.0.0.1")!, IPAddress("2001:db8::1")!])
        #expect(inventory.hosts[1].ips == [IPAddress("10.0.0.2")!], "ansible_host as the address")
        #expect(inventory.hosts[2].ips == [], "ips: [] explicitly")
        #expect(inventory.hosts[0].groups == ["cluster", "backend"], "parent groups count, all/ungrouped never")
        #expect(inventory.hosts[2].groups == ["cluster", "frontend"])
        #expect(inventory.service(named: "node-exporter")?.hostNames.count == 3)
        #expect(inventory.service(named: "etcd")?.hostNames == ["backend-1.example.com", "backend-2.example.com"])
    }

    @Test func hostsBesideAreMergedAndDuplicatesRefused() throws {
        let extra = "hosts:\n  - name: haproxy-1.example.com\n    ips: [10.0.0.21]\n"
        let inventory = try parse(Self.listJSON, cluster: extra)
        #expect(inventory.hosts.first?.name == "haproxy-1.example.com")
        #expect(inventory.hosts.count == 4)

        let clash = "hosts:\n  - name: haproxy-1.example.com\n    ips: [10.0.0.2]\n"
        let error = #expect(throws: ChpkiError.self) { try parse(Self.listJSON, cluster: clash) }
        #expect(error?.message.contains("list.json:4: host backend-2.example.com: ips[0]: 10.0.0.2 is already an address of hosts[0]") == true,
                "\(error?.message ?? "")")
    }

    @Test(arguments: [
        (#"{"ips": ["10.0.0.300"]}"#, "host backend-2.example.com: ips[0]"),
        (#"{"ansible_host": "backend-2"}"#, "host backend-2.example.com: the host's IP addresses are unknown"),
        (#"{}"#, "host backend-2.example.com: the host's IP addresses are unknown (no ips and no ansible_host)"),
        (#"{"ips": "10.0.0.2"}"#, "host backend-2.example.com: ips: expected a list"),
        (#"{"ips": ["10.0.0.1"]}"#, "10.0.0.1 is already an address of host backend-1.example.com of"),
    ])
    func badHostVariablesAreRefusedNamingTheHost(vars: String, mention: String) throws {
        let list = Self.listJSON.replacingOccurrences(of: #""backend-2.example.com": {"ansible_host": "10.0.0.2"}"#,
                                                      with: "\"backend-2.example.com\": \(vars)")
        #expect(list != Self.listJSON)
        let error = #expect(throws: ChpkiError.self) { try parse(list) }
        #expect(error?.message.contains("list.json") == true)
        #expect(error?.message.contains(mention) == true, "\(error?.message ?? "")")
        #expect(error?.exitCode == 2)
    }

    @Test func aNameOutsideTheDomainIsRefused() throws {
        let list = Self.listJSON.replacingOccurrences(of: "\"frontend-1.example.com\"]", with: "\"frontend-1.example.org\"]")
            .replacingOccurrences(of: "\"frontend-1.example.com\": {", with: "\"frontend-1.example.org\": {")
        let error = #expect(throws: ChpkiError.self) { try parse(list) }
        #expect(error?.message.contains("host frontend-1.example.org: 'frontend-1.example.org' is not a host name under the domain example.com") == true,
                "\(error?.message ?? "")")
    }

    @Test func aMissingInventoryIsRefusedInClusterYml() throws {
        let yaml = "domain: example.com\nansible_inventory: nowhere.json\n"
        let error = #expect(throws: ChpkiError.self) { try Inventory.parse(yaml: yaml, path: "/nonexistent/cluster.yml") }
        #expect(error?.message.hasPrefix("/nonexistent/cluster.yml:2: ansible_inventory: no such Ansible inventory") == true,
                "\(error?.message ?? "")")
    }
}
