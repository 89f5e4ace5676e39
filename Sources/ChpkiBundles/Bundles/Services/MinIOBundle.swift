import ChpkiBase
import ChpkiCA
import ChpkiInventory
import Foundation

/// MinIO (reference 000): `public.crt` (leaf and chain), `private.key` (exactly one PEM block: an
/// `EC PARAMETERS` block before the key breaks startup), and `CAs/`, every file of which MinIO
/// trusts: the root (roots only: intermediates travel in `public.crt`'s chain, so a new intermediate
/// changes nothing in an existing host's CAs/), and the other MinIO hosts' `public.crt` while the service
/// has at most `peerCertificateLimit` hosts. Above that the peers are left out: the CA
/// certificates already make every peer trusted, and a host's tree stays small (SPEC §4).
public struct MinIOBundle: ServiceUserBundle {
    public let name = "minio"

    /// The command layer asks a descriptor for its name and its membership steps.
    package init() {}
    /// Reference 000 shows the peers of a 4-host cluster; 16 keeps a host's CAs/ under ~20 kB.
    public static let peerCertificateLimit = 16
    static let owner = "minio-user"
    static let home = "home/minio-user/.minio"
    static let base = "home/minio-user/.minio/certs"
    static let certificate = "\(base)/public.crt"
    static let key = "\(base)/private.key"
    static let authorities = "\(base)/CAs"
    static let root = "\(authorities)/root-ca.crt"
    static let settings = "etc/default/minio.tls"

    static func intermediateName(_ index: Int) -> String { index == 0 ? "intermediate-ca.crt" : "intermediate-ca-\(index + 1).crt" }

    public func prepare(_ service: Service, facts: ClusterFacts) throws -> ServiceFacts {
        let peers = facts.hosts(of: service)
        try Self.refuseGrowthInsideAPool(service, facts: facts)
        // Rendered once per run: every host's minio.tls carries the same list. Without `pools:`, the
        // servers one by one (one pool, as before); with it, one {x...y} expansion per pool.
        let volumes = service.pools.map { pools in pools.compactMap { MinIOPools.expansion($0).map(Self.volume) } }
            ?? peers.map { Self.volume($0.name) }
        var shared = ServiceFacts(context: ["volumes": volumes.joined(separator: " ")])
        if peers.count <= Self.peerCertificateLimit {
            // The peer's public.crt, as reference 000 copies it: its leaf and the intermediate that
            // signed it, so the copy names its own issuer whichever intermediate that is.
            for peer in peers { shared.perHost[peer.name] = try facts.server(service, peer).chainPEM }
        }
        return shared
    }

    static func volume(_ server: String) -> String { "https://\(server):9900/data/minio" }

    /// A pool's membership never changes once it runs: a pool with some servers installed (their
    /// records hold MinIO files) and some not would put a new server into a running pool, which
    /// MinIO cannot do. Refused, exit 2, naming the pool; a whole new pool is fine.
    static func refuseGrowthInsideAPool(_ service: Service, facts: ClusterFacts) throws {
        let pools = service.pools ?? [facts.hosts(of: service).map(\.name)]
        let state = facts.installed.directory ?? "the install records"
        for (index, pool) in pools.enumerated() {
            let running = pool.filter { facts.installed.runs($0, service.name) }
            guard !running.isEmpty, running.count < pool.count else { continue }
            let joining = pool.filter { !running.contains($0) }
            let field = service.pools == nil ? "services.\(service.name).hosts" : "services.\(service.name).\(MinIOPools.key)[\(index)]"
            let minimum = MinIOPools.minimumNewPool(firstPool: pools.first?.count ?? pool.count)
            throw ChpkiError.input(.inventoryConflict, file: facts.inventory.path, field: field,
                "\(joining.joined(separator: ", ")) would join the running pool of \(running.joined(separator: ", ")) (installed per \(state)): "
                + "MinIO grows by whole server pools; put the new servers in a new pool of at least \(minimum) (services.\(service.name).\(MinIOPools.key))")
        }
    }

    public func directories(_ service: Service, facts: ClusterFacts) -> [BundleDirectory] {
        [Self.home, Self.base, Self.authorities].map { BundleDirectory($0, mode: 0o700, owner: Self.owner, service: name) }
    }

    public func files(for host: Host, _ service: Service, shared: ServiceFacts, facts: ClusterFacts) throws -> [BundleFile] {
        let server = try facts.server(service, host)
        var files = serverFiles(server, chain: Self.certificate, key: Self.key, root: Self.root, facts: facts)
        for peer in facts.hosts(of: service) where peer.name != host.name {
            guard let certificate = shared.perHost[peer.name] else { continue }
            files.append(file("\(Self.authorities)/\(peer.shortName).crt", certificate, mode: 0o644, role: .trust))
        }
        let snippet = try facts.render("minio.tls", shared.context(["host": host.name]))
        files.append(BundleFile(Self.settings, snippet, mode: 0o644, owner: "root", service: name))
        return files
    }

    /// MinIO reloads public.crt/private.key by itself but reads CAs/ (and minio.tls) only at
    /// start: a restart, one host at a time (erasure sets need their quorum), each serving its new
    /// public.crt.
    public func operations(for host: Host, _ service: Service, facts: ClusterFacts) -> ServiceOperations {
        let restart = [ServiceOperations.systemctl("restart", name)]
        return ServiceOperations(onLeaf: restart, onTrust: restart, serial: true, health: [
            HealthCheck(.tls, address: ClusterFacts.address(of: host), port: 9900, serverName: host.name, cafile: "/" + Self.root,
                        leaf: "/" + Self.certificate),
        ])
    }

    public func check(_ checks: inout BundleChecks, service: String) {
        let blocks = checks.files.blocks(Self.key)
        if blocks.count != 1 {
            checks.report(Self.key, "holds \(blocks.count) PEM blocks; MinIO needs exactly one (the key)")
        }
        checks.leaf(Self.certificate, key: checks.files.key(Self.key), names: [checks.host])
        checks.rootsOnly(Self.root)
        let listed = checks.files.list(Self.authorities).filter { $0.hasSuffix(".crt") }
        let intermediates = listed.filter { $0.hasPrefix("intermediate-ca") }.flatMap { checks.files.certificates("\(Self.authorities)/\($0)") }
        let domain = checks.host.split(separator: ".").dropFirst().joined(separator: ".")
        for peer in listed where peer != "root-ca.crt" && !peer.hasPrefix("intermediate-ca") {
            let short = String(peer.dropLast(4))
            checks.leaf("\(Self.authorities)/\(peer)", key: nil, names: [domain.isEmpty ? short : "\(short).\(domain)"], untrusted: intermediates)
        }
    }

    public var snippets: [Snippet] { [Snippet(template: "minio.tls", paths: [Self.settings], rules: Self.settingsFindings)] }

    /// /etc/default/minio: settings only (a shell may source it), no plain http:// URL (peers and
    /// clients speak TLS: MINIO_VOLUMES, MINIO_SERVER_URL, ...), and `--certs-dir` left at the
    /// directory chpki fills.
    @Sendable static func settingsFindings(_ text: String) -> [SnippetFinding] {
        let (settings, other) = SnippetSyntax.environment(text)
        var findings = other.map { SnippetFinding(line: $0, "not a NAME=value setting (a shell may source this file as root)") }
        for setting in settings {
            if SnippetSyntax.plainHTTP(setting.value) {
                findings.append(SnippetFinding(line: setting.line, "\(setting.name) names a plain http:// URL: MinIO would speak without TLS"))
            }
            let words = setting.value.split(separator: " ")
            if let index = words.firstIndex(where: { $0 == "--certs-dir" || $0 == "-S" }), index + 1 < words.count,
               words[index + 1] != "/" + Self.base {
                findings.append(SnippetFinding(line: setting.line, "\(setting.name) points --certs-dir at \(words[index + 1]), not /\(Self.base) where chpki puts MinIO's certificates"))
            }
        }
        return findings
    }
}
