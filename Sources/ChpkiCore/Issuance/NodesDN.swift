/// The `plugins.security.nodes_dn` and `plugins.security.authcz.admin_dn` lists for an inventory.
public struct NodesDN: Sendable, Encodable {
    public var nodesDN: [String]
    public var adminDN: [String]

    enum CodingKeys: String, CodingKey {
        case nodesDN = "nodes_dn", adminDN = "admin_dn"
    }

    /// Refuses an inventory whose admin DN a nodes_dn entry would match: the plugin would then
    /// treat a node as an admin (or refuse the admin).
    public init(inventory: Inventory, service serviceName: String = Service.openSearch) throws {
        guard let service = inventory.service(named: serviceName) else {
            throw ChpkiError.input(.inventoryUnknownService, file: inventory.path, field: "services", "there is no '\(serviceName)' service")
        }
        nodesDN = inventory.hosts(of: service).map { OpenSearchDN.string(NamingRules.subject(commonName: $0.name, inventory: inventory)) }
        adminDN = NamingRules.adminProfile(inventory: inventory).map { [OpenSearchDN.string($0.subject)] } ?? []
        for admin in adminDN {
            if let node = nodesDN.first(where: { OpenSearchDN.matches(pattern: $0, admin) }) {
                throw ChpkiError.input(.issueAdminIsNode, file: inventory.path, field: "admin.name",
                                       "the admin DN \(admin) is matched by the nodes_dn entry \(node): a node would be an admin")
            }
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

    static func quote(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
