import Foundation

/// OpenSearch (reference 000): node certificate and key, the root, the admin certificate, and the
/// security plugin's settings with `nodes_dn`/`admin_dn`. The plugin loads only unencrypted PKCS#8
/// (`BEGIN PRIVATE KEY`): PKCS#1 and SEC1 fail, Ed25519 is not loadable.
public struct OpenSearchBundle: ServiceUserBundle {
    public let name = Service.openSearch
    static let owner = "opensearch"
    static let chain = "etc/opensearch/full-chain.crt"
    static let key = "etc/opensearch/private.key"
    static let root = "etc/opensearch/root-ca.pem"
    static let admin = "etc/opensearch/admin.pem"
    static let adminKey = "etc/opensearch/admin-key.pem"
    static let settings = "etc/opensearch/opensearch-security.yml"

    public func prepare(_ service: Service, facts: ClusterFacts) throws -> ServiceFacts {
        let lists = try NodesDN(inventory: facts.inventory, service: service.name)
        // YAML list items, rendered once per run: every node's snippet carries the same lists.
        func items(_ values: [String]) -> String { values.map { "  - \(NodesDN.quote($0))\n" }.joined() }
        return ServiceFacts(context: ["nodes_dn": items(lists.nodesDN), "admin_dn": items(lists.adminDN)])
    }

    public func files(for host: Host, _ service: Service, shared: ServiceFacts, facts: ClusterFacts) throws -> [BundleFile] {
        let server = try facts.server(service, host)
        var files = serverFiles(server, chain: Self.chain, key: Self.key, root: Self.root, facts: facts)
        if let admin = NamingRules.adminProfile(inventory: facts.inventory) {
            let leaf = try facts.leaf(admin.identity)
            files.append(file(Self.admin, leaf.chainPEM, mode: 0o644, issued: leaf.notBefore))
            files.append(file(Self.adminKey, leaf.keyPEM, mode: 0o600))
        }
        files.append(file(Self.settings, try facts.render("opensearch-security.yml", shared.context(["host": host.name])), mode: 0o644))
        return files
    }


    public func check(_ checks: inout BundleChecks, service: String) {
        let key = checks.pkcs8Key(Self.key, service: "OpenSearch")
        checks.leaf(Self.chain, key: key, names: [checks.host])
        checks.rootsOnly(Self.root)
        if checks.files.exists(Self.admin) {
            let adminKey = checks.pkcs8Key(Self.adminKey, service: "OpenSearch")
            checks.leaf(Self.admin, key: adminKey, names: [])
        }
    }
}
