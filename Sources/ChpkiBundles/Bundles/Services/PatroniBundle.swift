import ChpkiCA
import ChpkiInventory
import ChpkiModel
import Foundation

/// Patroni and its PostgreSQL (reference 000): server certificate (REST API and PostgreSQL), the
/// `patroni@host` client certificate (ctl, etcd3, and replication logins), `tls.yml` blocks for
/// patroni.yml, and `pg_hba.conf`/`pg_ident.conf` admitting the cluster's own client certificates
/// for normal AND replication connections (`hostssl all` does not cover replication: replicas
/// bootstrap with pg_basebackup over one). PostgreSQL refuses a key readable by group or other
/// unless it is root-owned 0640: here postgres 0600.
public struct PatroniBundle: ServiceUserBundle {
    public let name = "patroni"
    static let owner = "postgres"
    static let certificate = "etc/ssl/server-cert.pem"
    static let key = "etc/ssl/private.key"
    static let root = "etc/ssl/root-ca.pem"
    static let clientCertificate = "etc/ssl/patroni-client.pem"
    static let clientKey = "etc/ssl/patroni-client.key"
    static let configDirectory = "etc/patroni"
    /// The operator's configuration, into which tls.yml's blocks are merged (patronictl reads it).
    static let config = "etc/patroni/patroni.yml"
    static let tls = "etc/patroni/tls.yml"
    static let hba = "etc/patroni/pg_hba.conf"
    static let ident = "etc/patroni/pg_ident.conf"

    public func prepare(_ service: Service, facts: ClusterFacts) throws -> ServiceFacts {
        let etcdHosts = facts.inventory.service(named: "etcd").map { facts.hosts(of: $0) } ?? facts.hosts(of: service)
        // Every client certificate of the inventory logs in as the role named after its service.
        // The lists are rendered once per run: every member's files carry the same ones.
        let clients = NamingRules.profiles(for: facts.inventory).filter { $0.identity.kind == .client }
        return ServiceFacts(context: [
            "etcd_hosts": etcdHosts.map { "\(ClusterFacts.address(of: $0)):2379" }.joined(separator: ","),
            "ident_lines": clients.map { "chpki      \($0.identity.name)  \($0.identity.service ?? "")\n" }.joined(),
            "replication_user": service.name,
        ])
    }

    public func directories(_ service: Service, facts: ClusterFacts) -> [BundleDirectory] {
        [BundleDirectory(Self.configDirectory, mode: 0o755, owner: Self.owner, service: name)]
    }

    public func files(for host: Host, _ service: Service, shared: ServiceFacts, facts: ClusterFacts) throws -> [BundleFile] {
        let server = try facts.server(service, host)
        var files = serverFiles(server, chain: Self.certificate, key: Self.key, root: Self.root, facts: facts)
        if service.enableClient {
            let client = try facts.client(service, host)
            files.append(file(Self.clientCertificate, client.chainPEM, mode: 0o644, issued: client.notBefore, role: .leaf))
            files.append(file(Self.clientKey, client.keyPEM, mode: 0o600, role: .key))
        }
        let context = shared.context(["host": host.name, "ip": ClusterFacts.address(of: host)])
        files.append(file(Self.tls, try facts.render("patroni-tls.yml", context), mode: 0o644))
        files.append(file(Self.hba, try facts.render("pg_hba.conf", context), mode: 0o644))
        files.append(file(Self.ident, try facts.render("pg_ident.conf", context), mode: 0o644))
        return files
    }

    /// A leaf: SIGHUP makes Patroni (≥ 3.0.4) rebuild its REST API context when the certificate's
    /// serial changed, and PostgreSQL is asked too (pg_reload_conf over the Unix socket:
    /// pg_hba.conf's `local ... postgres peer`), so the reload does not rest on Patroni's loop.
    /// Trust: the REST API loads its cafile only when it builds its TLS context (at start, or on a
    /// reload that finds a new certificate serial: patroni `api.py` `reload_config`), so a trust
    /// change takes a restart, or the other members' new client certificates are refused until
    /// this host's leaves step (the soak saw it when the REST API was only reloaded). A plain
    /// restart of the leader's Patroni stops its PostgreSQL (the soak's 3 failed writes and 3.1 s
    /// without a leader at `rotate-ca`), so the restart happens in maintenance mode: `patronictl
    /// pause --wait` (every member acknowledged: no failover, and a stopping Patroni leaves
    /// PostgreSQL running and keeps the leader key), the restart, PostgreSQL's reload (its
    /// ssl_ca_file), `patronictl resume --wait`. A host where Patroni is new just starts it
    /// (`on_start`): pausing needs a running cluster. A step that fails between pause and resume
    /// leaves the cluster paused: the next run's pause then fails ("already paused") until an
    /// operator runs `patronictl resume` (docs/rollout.md).
    /// One reload is not always enough: Patroni (4.1, `__main__.reload_config`) rebuilds its REST
    /// API context on a SIGHUP only when patroni.yml did not change in the same reload, so when
    /// tls.yml (its etcd hosts) and the certificate change together, as on growth, the first
    /// reload applies the configuration and the old certificate stays until the next (the soak
    /// found it: an expired REST certificate three weeks after such a week). No second reload
    /// here: the health checks compare the served leaf with the installed one, and the executor
    /// runs these commands once more when Patroni still serves the old one after its grace
    /// (`RolloutExecutor.Options.staleGrace`, longer than the 10 s loop in which Patroni acts on a
    /// SIGHUP), so the second SIGHUP comes only when it is needed and never merges with the first.

    public func operations(for host: Host, _ service: Service, facts: ClusterFacts) -> ServiceOperations {
        let reloadPostgres = ["runuser", "-u", Self.owner, "--", "psql", "-X", "-q", "-c", "SELECT pg_reload_conf()"]
        let address = ClusterFacts.address(of: host)
        let client = service.enableClient ? (Self.clientCertificate, Self.clientKey) : (Self.certificate, Self.key)
        let cafile = "/" + Self.root
        let patronictl = { (action: String) in ["patronictl", "-c", "/" + Self.config, action, "--wait"] }
        return ServiceOperations(
            onLeaf: [ServiceOperations.systemctl("reload", name), reloadPostgres],
            onTrust: [patronictl("pause"), ServiceOperations.systemctl("restart", name), reloadPostgres, patronictl("resume")],
            onStart: [ServiceOperations.systemctl("restart", name)], serial: true,
            health: [
                HealthCheck(.patroniREST, address: address, port: 8008, serverName: host.name, cafile: cafile,
                            certfile: "/" + client.0, keyfile: "/" + client.1, leaf: "/" + Self.certificate),
                HealthCheck(.postgres, address: address, port: 5432, serverName: host.name, cafile: cafile,
                            certfile: "/" + client.0, keyfile: "/" + client.1, leaf: "/" + Self.certificate),
            ])
    }

    public func check(_ checks: inout BundleChecks, service: String) {
        checks.postgresKey(Self.key)
        checks.leaf(Self.certificate, key: checks.files.key(Self.key), names: [checks.host])
        checks.rootsOnly(Self.root)
        if checks.files.exists(Self.clientCertificate) {
            checks.postgresKey(Self.clientKey)
            checks.leaf(Self.clientCertificate, key: checks.files.key(Self.clientKey), names: [])
        }
        if let hba = checks.files.text(Self.hba) {
            let kinds = hba.split(separator: "\n").map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }) }
                .filter { $0.first == "hostssl" && $0.contains("cert") }.compactMap { $0.dropFirst().first }
            if !kinds.contains("replication") {
                checks.report(Self.hba, "no 'hostssl replication' line: replicas cannot bootstrap (pg_basebackup makes a replication connection)")
            }
        }
    }

    public var snippets: [Snippet] {
        [
            Snippet(template: "pg_hba.conf", paths: [Self.hba], rules: Self.hbaFindings),
            Snippet(template: "patroni-tls.yml", paths: [Self.tls], rules: Self.tlsFindings),
        ]
    }

    /// Authentication methods PostgreSQL must never accept from the network: `trust` lets anyone
    /// in, `password` sends it in clear, `md5` is a replayable hash, `ident` asks the client's own
    /// machine who it is.
    static let networkForbiddenMethods: Set<String> = ["trust", "password", "md5", "ident"]

    /// pg_hba.conf: a network line (anything but `local`) with a forbidden method, a `host` or
    /// `hostnossl` line that admits connections without TLS, and `include` directives (the file
    /// they pull in is not in the bundle, so nothing could check it).
    @Sendable static func hbaFindings(_ text: String) -> [SnippetFinding] {
        SnippetSyntax.lines(text).compactMap { number, line in hbaFinding(SnippetSyntax.words(line)).map { SnippetFinding(line: number, $0) } }
    }

    static func hbaFinding(_ words: [String]) -> String? {
        guard let type = words.first?.lowercased() else { return nil }
        if type.hasPrefix("include") { return "'\(words[0])' pulls in a file outside the bundle, which verify cannot check" }
        guard type.hasPrefix("host"), words.count >= 5 else { return nil }
        let address = words[3]
        // An IP address without a /prefix is followed by its netmask as a word of its own.
        let hasMask = !address.contains("/") && IPAddress(address) != nil
        let methodIndex = hasMask ? 5 : 4
        guard methodIndex < words.count else { return nil }
        let method = words[methodIndex].lowercased()
        if method == "reject" { return nil }
        let network = hasMask ? "\(address) \(words[4])" : address
        if Self.networkForbiddenMethods.contains(method) {
            return "'\(method)' authentication for the network address \(network): PostgreSQL must never accept it from the network (chpki's lines use hostssl ... cert)"
        }
        if type == "hostnossl" || (type == "host" && method != "cert") {
            return "'\(words[0])' admits \(network) without TLS (use hostssl)"
        }
        return nil
    }

    /// tls.yml as merged into patroni.yml: the REST API must verify client certificates
    /// (`verify_client` required, or optional which still demands one for every unsafe call),
    /// `patronictl` must verify the API, Patroni talks to etcd over https only, PostgreSQL's own
    /// connections verify the server (sslmode verify-ca/verify-full) with TLS 1.2 or later, and a
    /// `pg_hba` list Patroni writes obeys the pg_hba.conf rules.
    @Sendable static func tlsFindings(_ text: String) -> [SnippetFinding] {
        guard let settings = SnippetSyntax.yaml(text) else { return [SnippetSyntax.notYAML] }
        var findings: [SnippetFinding] = []
        func value(_ key: String) -> (line: Int, value: String)? { settings.last { $0.key == key }?.values.last }
        let verifyClient = value("restapi.verify_client")
        if !["required", "optional"].contains(verifyClient?.value.lowercased() ?? "") {
            let line = verifyClient?.line ?? settings.first { $0.key.hasPrefix("restapi.") }?.line ?? 0
            findings.append(SnippetFinding(line: line, "restapi.verify_client is \(verifyClient.map { "'\($0.value)'" } ?? "not set"): the REST API would accept callers without a client certificate (chpki sets required)"))
        }
        for setting in settings {
            let key = setting.key
            for (line, raw) in setting.values {
                let value = raw.lowercased()
                if key.hasSuffix(".insecure") && ["true", "yes", "on"].contains(value) {
                    findings.append(SnippetFinding(line: line, "\(key) is \(raw): the server's certificate is not verified"))
                } else if key == "etcd3.protocol" || key == "etcd.protocol", value != "https" {
                    findings.append(SnippetFinding(line: line, "\(key) is \(raw): Patroni would talk to etcd without TLS"))
                } else if key.hasPrefix("etcd"), SnippetSyntax.plainHTTP(value) {
                    findings.append(SnippetFinding(line: line, "\(key) names a plain http:// URL: Patroni would talk to etcd without TLS"))
                } else if key.hasSuffix(".sslmode"), !["verify-ca", "verify-full"].contains(value) {
                    findings.append(SnippetFinding(line: line, "\(key) is \(raw): the connection would not verify the server's certificate (verify-ca or verify-full)"))
                } else if key.hasSuffix("ssl_min_protocol_version"), SnippetSyntax.isOldTLS(value) {
                    findings.append(SnippetFinding(line: line, "\(key) is \(raw): TLS older than 1.2"))
                } else if key.hasSuffix("pg_hba"), let why = hbaFinding(SnippetSyntax.words(raw)) {
                    findings.append(SnippetFinding(line: line, "\(key): \(why)"))
                }
            }
        }
        return findings
    }
}
