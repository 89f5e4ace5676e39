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
            files.append(file(Self.clientCertificate, client.chainPEM, mode: 0o644, issued: client.notBefore))
            files.append(file(Self.clientKey, client.keyPEM, mode: 0o600))
        }
        let context = shared.context(["host": host.name, "ip": ClusterFacts.address(of: host)])
        files.append(file(Self.tls, try facts.render("patroni-tls.yml", context), mode: 0o644))
        files.append(file(Self.hba, try facts.render("pg_hba.conf", context), mode: 0o644))
        files.append(file(Self.ident, try facts.render("pg_ident.conf", context), mode: 0o644))
        return files
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
}
