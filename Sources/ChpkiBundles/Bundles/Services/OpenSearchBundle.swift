import ChpkiCA
import ChpkiInventory
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
        return ServiceFacts(context: ["nodes_dn": items(lists.patterns), "admin_dn": items(lists.adminDN)])
    }

    public func files(for host: Host, _ service: Service, shared: ServiceFacts, facts: ClusterFacts) throws -> [BundleFile] {
        let server = try facts.server(service, host)
        var files = serverFiles(server, chain: Self.chain, key: Self.key, root: Self.root, facts: facts)
        if let admin = NamingRules.adminProfile(inventory: facts.inventory) {
            let leaf = try facts.leaf(admin.identity)
            files.append(file(Self.admin, leaf.chainPEM, mode: 0o644, issued: leaf.notBefore, role: .leaf))
            files.append(file(Self.adminKey, leaf.keyPEM, mode: 0o600, role: .key))
        }
        files.append(file(Self.settings, try facts.render("opensearch-security.yml", shared.context(["host": host.name])), mode: 0o644))
        return files
    }

    /// No ExecReload in OpenSearch's unit (the plugin's hot reload API is an opt-in site
    /// override): a rolling restart, one node at a time, each serving HTTPS with its new chain again.
    public func operations(for host: Host, _ service: Service, facts: ClusterFacts) -> ServiceOperations {
        let restart = [ServiceOperations.systemctl("restart", name)]
        return ServiceOperations(onLeaf: restart, onTrust: restart, serial: true, health: [
            HealthCheck(.tls, address: ClusterFacts.address(of: host), port: 9200, serverName: host.name, cafile: "/" + Self.root,
                        leaf: "/" + Self.chain),
        ])
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

    public var snippets: [Snippet] { [Snippet(template: "opensearch-security.yml", paths: [Self.settings], rules: Self.settingsFindings)] }

    /// The security plugin's settings (flat `plugins.security.x` keys or nested maps alike): the
    /// plugin enabled, no demo certificates, TLS on HTTP, no protocol older than TLS 1.2, and no
    /// `nodes_dn` entry that matches every certificate (a node may do anything in the cluster).
    /// `transport.enforce_hostname_verification: false` is chpki's own choice and allowed: nodes
    /// are pinned by the CA and `nodes_dn`.
    @Sendable static func settingsFindings(_ text: String) -> [SnippetFinding] {
        guard let settings = SnippetSyntax.yaml(text) else { return [SnippetSyntax.notYAML] }
        var findings: [SnippetFinding] = []
        let prefix = "plugins.security."
        func isTrue(_ value: String) -> Bool { value.lowercased() == "true" }
        let http = settings.last { $0.key == prefix + "ssl.http.enabled" }
        if let value = http?.values.last, !isTrue(value.value) {
            findings.append(SnippetFinding(line: value.line, "\(prefix)ssl.http.enabled is \(value.value): the REST API would serve plain HTTP"))
        } else if http == nil {
            findings.append(SnippetFinding(line: 0, "no \(prefix)ssl.http.enabled: true: the REST API would serve plain HTTP"))
        }
        for setting in settings {
            let key = setting.key
            for (line, value) in setting.values {
                if (key == prefix + "allow_unsafe_democertificates" || key == prefix + "disabled"), isTrue(value) {
                    findings.append(SnippetFinding(line: line, "\(key) is \(value): \(key.hasSuffix("disabled") ? "no TLS or authentication at all" : "the published demo certificates would be accepted")"))
                } else if key.hasPrefix(prefix + "ssl."), key.hasSuffix("enabled_protocols"), SnippetSyntax.isOldTLS(value) {
                    findings.append(SnippetFinding(line: line, "\(key) allows \(value): TLS older than 1.2"))
                } else if key == prefix + "nodes_dn", matchesEveryone(value) {
                    findings.append(SnippetFinding(line: line, "\(key) entry '\(value)' matches every certificate of the CA as a node"))
                }
            }
        }
        return findings
    }

    /// A nodes_dn pattern whose every part is a bare wildcard (`*`, `CN=*`, `CN=*,OU=*`).
    static func matchesEveryone(_ pattern: String) -> Bool {
        pattern.split(separator: ",").allSatisfy { part in
            let value = part.split(separator: "=", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            return value.allSatisfy { $0 == "*" } && !value.isEmpty
        } && !pattern.isEmpty
    }
}
