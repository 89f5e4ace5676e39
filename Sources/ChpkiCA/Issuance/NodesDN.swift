import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// The `plugins.security.nodes_dn` and `plugins.security.authcz.admin_dn` lists for an inventory.
public struct NodesDN: Sendable, Encodable {
    /// One entry per node: each node's principal exactly (`chpki nodes-dn`).
    public var nodesDN: [String]
    public var adminDN: [String]
    /// What the bundle's opensearch-security.yml lists (SPEC §7 Growth): one `/regex/` per naming
    /// rule of the nodes (`backend-<number>` in the first label), so a node added by the same rule
    /// is already a node on every existing host and they need no restart (nodes_dn is read only
    /// at start); a node whose name has no number, or whose rule also names an inventory host that
    /// does not run the service, keeps its exact entry.
    public var patterns: [String]

    package enum CodingKeys: String, CodingKey {
        case nodesDN = "nodes_dn", adminDN = "admin_dn"
    }

    /// Refuses an inventory whose admin DN a nodes_dn entry would match: the plugin would then
    /// treat a node as an admin (or refuse the admin).
    public init(inventory: Inventory, service serviceName: String = Service.openSearch) throws {
        guard let service = inventory.service(named: serviceName) else {
            throw ChpkiError.input(.inventoryUnknownService, file: inventory.path, field: "services", "there is no '\(serviceName)' service")
        }
        let nodes = inventory.hosts(of: service)
        nodesDN = nodes.map { OpenSearchDN.string(NamingRules.subject(commonName: $0.name, inventory: inventory)) }
        adminDN = NamingRules.adminProfile(inventory: inventory).map { [OpenSearchDN.string($0.subject)] } ?? []
        patterns = Self.patterns(nodes: nodes, inventory: inventory)
        for admin in adminDN {
            if let node = (nodesDN + patterns).first(where: { OpenSearchDN.matches(pattern: $0, admin) }) {
                throw ChpkiError.input(.issueAdminIsNode, file: inventory.path, field: "admin.name",
                                       "the admin DN \(admin) is matched by the nodes_dn entry \(node): a node would be an admin")
            }
        }
    }

    /// The bundle's entries: per naming rule a regex, in the order of each rule's first node.
    package static func patterns(nodes: [Host], inventory: Inventory) -> [String] {
        let marker = "0"
        func principal(_ name: String) -> String { OpenSearchDN.string(NamingRules.subject(commonName: name, inventory: inventory)) }
        var entries: [String] = []
        for node in nodes {
            guard let rule = NamingRule(node.name) else { entries.append(principal(node.name)); continue }
            // The node's principal with its number as a marker, then the marker as [0-9]+: the
            // DN's escaping of every other character stays exactly as the plugin computes it.
            let pattern = "/" + OpenSearchDN.literal(principal(rule.prefix + marker + rule.suffix))
                .replacingOccurrences(of: OpenSearchDN.literal(rule.prefix) + marker + OpenSearchDN.literal(rule.suffix),
                                      with: OpenSearchDN.literal(rule.prefix) + "[0-9]+" + OpenSearchDN.literal(rule.suffix)) + "/"
            let outsiders = inventory.hosts.contains { host in !nodes.contains(host) && NamingRule(host.name).map { $0.prefix == rule.prefix && $0.suffix == rule.suffix } == true }
            let entry = outsiders || !OpenSearchDN.matches(pattern: pattern, principal(node.name)) ? principal(node.name) : pattern
            if !entries.contains(entry) { entries.append(entry) }
        }
        return entries
    }

    /// A host name as the text around the last number of its first label (`backend-` 12 `.example.com`).
    struct NamingRule {
        var prefix: String
        var suffix: String

        init?(_ name: String) {
            let label = name.prefix { $0 != "." }
            guard let end = label.lastIndex(where: { ("0"..."9").contains($0) }) else { return nil }
            var start = end
            while start > label.startIndex, ("0"..."9").contains(label[label.index(before: start)]) { start = label.index(before: start) }
            prefix = String(name[..<start])
            suffix = String(name[name.index(after: end)...])
        }
    }

    /// The YAML block for opensearch.yml, strings double-quoted.
    public var yaml: String {
        var lines = ["plugins.security.nodes_dn:"] + nodesDN.map { "  - \(Self.quote($0))" }
        if !adminDN.isEmpty {
            lines += ["plugins.security.authcz.admin_dn:"] + adminDN.map { "  - \(Self.quote($0))" }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    package static func quote(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
