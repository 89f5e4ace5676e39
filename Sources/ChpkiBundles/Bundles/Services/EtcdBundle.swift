import ChpkiCA
import ChpkiInventory
import ChpkiModel
import Foundation

/// etcd 3.4 (Debian reads /etc/default/etcd): the root (roots only, as every trust file: the
/// intermediate travels in each chain), server and peer certificates with keys, and a
/// `tls.env` of ETCD_* variables. Peer certificates act as client and server, and with
/// `--client-cert-auth` etcd's own gateway uses the server certificate as a client: both carry
/// serverAuth and clientAuth, and IP SANs for every advertised address.
public struct EtcdBundle: ServiceUserBundle {
    public let name = "etcd"

    /// The command layer asks a descriptor for its name and its membership steps.
    package init() {}
    static let owner = "etcd"
    static let pki = "etc/etcd/pki"
    static let authority = "\(pki)/ca.pem"
    static let server = "\(pki)/server.pem"
    static let serverKey = "\(pki)/server-key.pem"
    static let peer = "\(pki)/peer.pem"
    static let peerKey = "\(pki)/peer-key.pem"
    static let client = "\(pki)/client.pem"
    static let clientKey = "\(pki)/client-key.pem"
    static let environment = "etc/etcd/tls.env"
    /// ETCD_INITIAL_CLUSTER*, read only at a member's first start: role `bootstrap`, kept as the
    /// host has it once it is a member, so growth changes no existing member's files.
    static let bootstrap = "etc/etcd/bootstrap.env"

    public func prepare(_ service: Service, facts: ClusterFacts) throws -> ServiceFacts {
        // Who is a member, who joins: from the install records, once per run.
        let membership = EtcdMembership(hosts: facts.hosts(of: service), installed: facts.installed, service: name)
        try membership.checkContinuity(inventory: facts.inventory.path, service: name, state: facts.installed.directory)
        return ServiceFacts(context: ["initial_cluster_token": "chpki-\(facts.inventory.domain)"], membership: membership)
    }

    public func directories(_ service: Service, facts: ClusterFacts) -> [BundleDirectory] {
        [BundleDirectory(Self.pki, mode: 0o700, owner: Self.owner, service: name)]
    }

    public func files(for host: Host, _ service: Service, shared: ServiceFacts, facts: ClusterFacts) throws -> [BundleFile] {
        let server = try facts.server(service, host)
        var files = [
            file(Self.authority, facts.rootPEM, mode: 0o644, role: .trust),
            file(Self.server, server.chainPEM, mode: 0o644, issued: server.notBefore, role: .leaf),
            file(Self.serverKey, server.keyPEM, mode: 0o600, role: .key),
            file(Self.peer, server.chainPEM, mode: 0o644, role: .leaf),
            file(Self.peerKey, server.keyPEM, mode: 0o600, role: .key),
        ]
        if service.enableClient {
            let client = try facts.client(service, host)
            files.append(file(Self.client, client.chainPEM, mode: 0o644, issued: client.notBefore, role: .leaf))
            files.append(file(Self.clientKey, client.keyPEM, mode: 0o600, role: .key))
        }
        let ip = ClusterFacts.address(of: host)
        // A loopback-only host (any of 127.0.0.0/8 or ::1) already listens on loopback: a second
        // https://127.0.0.1:2379 listener would be a second cluster member's port on one machine.
        files.append(file(Self.environment, try facts.render("etcd-tls.env", shared.context([
            "host": host.name, "ip": ip, "ip_is_loopback": ClusterFacts.isLoopback(ip),
        ])), mode: 0o644))
        files.append(file(Self.bootstrap, try bootstrapSettings(for: host, shared: shared, facts: facts), mode: 0o644, role: .bootstrap))
        return files
    }

    /// The host's bootstrap.env: a member keeps the bytes it has (the previous bundle's copy, or the
    /// rendering that matches its record); a joiner or a new cluster's host gets its first-start list.
    func bootstrapSettings(for host: Host, shared: ServiceFacts, facts: ClusterFacts) throws -> Data {
        let membership = shared.membership ?? EtcdMembership(hosts: [host], installed: .none, service: name)
        func render(cluster: String, state: String) throws -> Data {
            try facts.render("etcd-bootstrap.env", shared.context([
                "host": host.name, "initial_cluster": cluster, "initial_cluster_state": state,
            ]))
        }
        let own = try render(cluster: membership.initialCluster(for: host.name), state: membership.state(for: host.name))
        guard membership.members.contains(where: { $0.name == host.name }) else { return own }
        // A member since the cluster was made: it has the new-cluster list of today's members.
        let founding = try render(cluster: membership.initialCluster(for: host.name), state: "new")
        return facts.installed.installedBytes(host.name, Self.bootstrap, candidates: [own, founding]) ?? own
    }

    /// The client certificate etcdctl uses on a member: the client's when the service has one, else
    /// the server's (it carries clientAuth).
    public static func clientFiles(_ service: Service) -> (certificate: String, key: String) {
        service.enableClient ? (client, clientKey) : (server, serverKey)
    }

    /// etcd rereads its certificate and key on each handshake (its TLS config's GetCertificate
    /// loads the files anew), so a new leaf needs nothing run: the health check proves the member
    /// presents it. It never rereads its trusted CA file (etcd issue 11555) nor tls.env: those
    /// take a restart, one member at a time, each answering /health over TLS (with the client
    /// certificate, else the server one, which carries clientAuth) and presenting its new
    /// server.pem before the next. (The soak counted the restarts on every renewal: 65 probes
    /// found a member restarting in five simulated years.)
    public func operations(for host: Host, _ service: Service, facts: ClusterFacts) -> ServiceOperations {
        let restart = [ServiceOperations.systemctl("restart", name)]
        let client = service.enableClient ? (Self.client, Self.clientKey) : (Self.server, Self.serverKey)
        return ServiceOperations(onLeaf: [], onConfig: restart, onTrust: restart, serial: true, health: [
            HealthCheck(.etcd, address: ClusterFacts.address(of: host), port: 2379, serverName: host.name, cafile: "/" + Self.authority,
                        certfile: "/" + client.0, keyfile: "/" + client.1, leaf: "/" + Self.server),
        ])
    }

    public func check(_ checks: inout BundleChecks, service: String) {
        let addresses = listenAddresses(checks.files)
        for (certificate, key) in [(Self.server, Self.serverKey), (Self.peer, Self.peerKey)] {
            checks.leaf(certificate, key: checks.files.key(key), names: [checks.host] + addresses)
            checks.extendedKeyUsage(certificate, ["serverAuth", "clientAuth"], why: "etcd needs serverAuth and clientAuth (its gateway and peers act as clients)")
        }
        if checks.files.exists(Self.client) {
            checks.leaf(Self.client, key: checks.files.key(Self.clientKey), names: [])
        }
    }

    /// The IPs etcd listens on for peers, from the tree's tls.env: its certificates must cover them.
    func listenAddresses(_ files: TreeFiles) -> [String] {
        guard let text = files.text(Self.environment) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("ETCD_LISTEN_PEER_URLS=") {
            return line.dropFirst("ETCD_LISTEN_PEER_URLS=".count).split(separator: ",").compactMap { url in
                let hostPort = url.replacingOccurrences(of: "https://", with: "")
                let host = hostPort.hasPrefix("[") ? String(hostPort.dropFirst().prefix(while: { $0 != "]" }))
                    : String(hostPort.prefix(while: { $0 != ":" }))
                return IPAddress(host) == nil ? nil : host
            }
        }
        return []
    }

    public var snippets: [Snippet] {
        [Snippet(template: "etcd-tls.env", paths: [Self.environment], rules: Self.environmentFindings),
         Snippet(template: "etcd-bootstrap.env", paths: [Self.bootstrap], rules: Self.bootstrapFindings)]
    }

    /// bootstrap.env: settings only (sourced by a shell as root), no plain http:// URL, and a state
    /// etcd knows.
    @Sendable static func bootstrapFindings(_ text: String) -> [SnippetFinding] {
        let (settings, other) = SnippetSyntax.environment(text)
        var findings = other.map { SnippetFinding(line: $0, "not an ETCD_NAME=value setting (a shell sources this file as root)") }
        for setting in settings {
            if SnippetSyntax.plainHTTP(setting.value) {
                findings.append(SnippetFinding(line: setting.line, "\(setting.name) names a plain http:// URL: etcd speaks TLS only"))
            }
            if SnippetSyntax.flagName(setting.name, prefix: "ETCD_") == "initial-cluster-state", !["new", "existing"].contains(setting.value) {
                findings.append(SnippetFinding(line: setting.line, "\(setting.name) is '\(setting.value)', not new or existing"))
            }
        }
        return findings
    }

    /// Settings etcd must have: client and peer certificates verified against the cluster's CA
    /// (without a trusted CA file Go would verify them against the system's public roots).
    static let required: [(flag: String, value: String?, why: String)] = [
        ("client-cert-auth", "true", "etcd would accept clients without a certificate"),
        ("peer-client-cert-auth", "true", "etcd would accept peers without a certificate"),
        ("trusted-ca-file", nil, "client certificates would be checked against the system's roots, not the cluster's"),
        ("peer-trusted-ca-file", nil, "peer certificates would be checked against the system's roots, not the cluster's"),
    ]

    /// Settings etcd must never have when true: self-signed certificates, and peers not held to
    /// their SANs.
    static let forbidden: [(flag: String, why: String)] = [
        ("auto-tls", "etcd would serve a self-signed certificate"),
        ("peer-auto-tls", "etcd would use self-signed peer certificates"),
        ("experimental-peer-skip-client-san-verification", "peers' certificates would not be held to their addresses"),
    ]

    /// tls.env (or a flags file): the `required` settings, none of the `forbidden` ones, no plain
    /// http:// URL, TLS 1.2 or later, and nothing but settings (Debian's init script sources
    /// /etc/default/etcd with a shell, as root).
    @Sendable static func environmentFindings(_ text: String) -> [SnippetFinding] {
        let (settings, other) = SnippetSyntax.environment(text)
        var findings = other.map { SnippetFinding(line: $0, "not an ETCD_NAME=value setting (a shell sources this file as root)") }
        for rule in required {
            let name = "ETCD_" + rule.flag.uppercased().replacingOccurrences(of: "-", with: "_")
            guard let setting = SnippetSyntax.last(settings, rule.flag, prefix: "ETCD_"), !setting.value.isEmpty else {
                findings.append(SnippetFinding(line: 0, "no \(name)\(rule.value.map { "=\($0)" } ?? ""): \(rule.why)"))
                continue
            }
            if let value = rule.value, setting.value.lowercased() != value {
                findings.append(SnippetFinding(line: setting.line, "\(setting.name) is '\(setting.value)', not \(value): \(rule.why)"))
            }
        }
        for rule in forbidden {
            if let setting = SnippetSyntax.last(settings, rule.flag, prefix: "ETCD_"), setting.value.lowercased() == "true" {
                findings.append(SnippetFinding(line: setting.line, "\(setting.name) is true: \(rule.why)"))
            }
        }
        for setting in settings {
            let flag = SnippetSyntax.flagName(setting.name, prefix: "ETCD_")
            if SnippetSyntax.plainHTTP(setting.value) {
                findings.append(SnippetFinding(line: setting.line, "\(setting.name) names a plain http:// URL: etcd speaks TLS only"))
            } else if flag.hasSuffix("tls-min-version") || flag.hasSuffix("tls-max-version"), SnippetSyntax.isOldTLS(setting.value) {
                findings.append(SnippetFinding(line: setting.line, "\(setting.name) is \(setting.value): TLS older than 1.2"))
            }
        }
        return findings
    }
}
