import Foundation

/// etcd 3.4 (Debian reads /etc/default/etcd): the root (roots only, as every trust file: the
/// intermediate travels in each chain), server and peer certificates with keys, and a
/// `tls.env` of ETCD_* variables. Peer certificates act as client and server, and with
/// `--client-cert-auth` etcd's own gateway uses the server certificate as a client: both carry
/// serverAuth and clientAuth, and IP SANs for every advertised address.
public struct EtcdBundle: ServiceUserBundle {
    public let name = "etcd"
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

    public func prepare(_ service: Service, facts: ClusterFacts) throws -> ServiceFacts {
        let members = facts.hosts(of: service)
        // Rendered once per run: every member's tls.env carries the same list.
        return ServiceFacts(context: [
            "initial_cluster": members.map { "\($0.name)=https://\(ClusterFacts.address(of: $0)):2380" }.joined(separator: ","),
        ])
    }

    public func directories(_ service: Service, facts: ClusterFacts) -> [BundleDirectory] {
        [BundleDirectory(Self.pki, mode: 0o700, owner: Self.owner, service: name)]
    }

    public func files(for host: Host, _ service: Service, shared: ServiceFacts, facts: ClusterFacts) throws -> [BundleFile] {
        let server = try facts.server(service, host)
        var files = [
            file(Self.authority, facts.rootPEM, mode: 0o644),
            file(Self.server, server.chainPEM, mode: 0o644, issued: server.notBefore),
            file(Self.serverKey, server.keyPEM, mode: 0o600),
            file(Self.peer, server.chainPEM, mode: 0o644),
            file(Self.peerKey, server.keyPEM, mode: 0o600),
        ]
        if service.enableClient {
            let client = try facts.client(service, host)
            files.append(file(Self.client, client.chainPEM, mode: 0o644, issued: client.notBefore))
            files.append(file(Self.clientKey, client.keyPEM, mode: 0o600))
        }
        let ip = ClusterFacts.address(of: host)
        // A loopback-only host (any of 127.0.0.0/8 or ::1) already listens on loopback: a second
        // https://127.0.0.1:2379 listener would be a second cluster member's port on one machine.
        files.append(file(Self.environment, try facts.render("etcd-tls.env", shared.context([
            "host": host.name, "ip": ip, "ip_is_loopback": ClusterFacts.isLoopback(ip),
        ])), mode: 0o644))
        return files
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
}
