import Foundation

/// Where each service expects its files, with owners and modes (SPEC §4, docs/bundles.md).
public enum BundleLayout {
    /// Services with a layout of their own; any other service gets minicluster's.
    public static let knownServices = ["opensearch", "minio", "patroni", "etcd", "haproxy", "nginx"]
    /// Not an inventory service: asks for minicluster's /etc/credentials layout of every service.
    public static let minicluster = "minicluster"

    /// Directories a bundle introduces and owns, with their modes; system directories (etc/, home/, ...)
    /// are never in an archive, so extracting one never changes them.
    static let ownedDirectories: [(path: String, mode: UInt16)] = [
        ("etc/etcd/pki", 0o700),
        ("home/minio-user/.minio/certs", 0o700),
        ("home/minio-user/.minio/certs/CAs", 0o700),
        ("etc/ssl/haproxy", 0o700),
        ("etc/credentials/x509", 0o755),
    ]

    static func privateDirectories(containing path: String) -> [(path: String, mode: UInt16)] {
        ownedDirectories.filter { path.hasPrefix($0.path + "/") }
    }

    /// The material of one issued leaf.
    struct Leaf {
        var certificatePEM: String
        var keyPEM: String
        /// The leaf, then the intermediate when the CA has one.
        var chainPEM: String
    }

    /// What laying out a host needs: the inventory, the CA's certificates, the valid leaves, the templates.
    struct Context {
        var inventory: Inventory
        /// The root, and during a rotation the previous root too: every trust file holds them all.
        var roots: [Data]
        /// Intermediates by serial: the current one, and during a rotation the previous one.
        var intermediates: [String: Data]
        var leaves: [CertificateIdentity: LeafWithKey]
        var templates: Templates
        var flavor: FrontendFlavor

        var rootPEM: Data { roots.reduce(Data(), +) }


        /// The intermediate that issued a record, if it was not the root.
        func intermediate(of record: IssuedCertificate) -> Data? { record.issuerSerial.flatMap { intermediates[$0.hex] } }

        func leaf(_ identity: CertificateIdentity) throws -> Leaf {
            guard let leaf = leaves[identity] else {
                throw ChpkiError.input(file: inventory.path, field: identity.host ?? identity.name,
                                       "no valid \(identity.kind.rawValue) certificate for \(identity.service ?? "") '\(identity.name)' in the CA: run 'chpki issue' first")
            }
            let record = leaf.certificate
            let chain = record.certificatePEM + (intermediate(of: record).map { String(decoding: $0, as: UTF8.self) } ?? "")
            return Leaf(certificatePEM: record.certificatePEM, keyPEM: leaf.privateKeyPEM, chainPEM: chain)
        }

        func server(_ service: Service, _ host: Host) throws -> Leaf {
            try leaf(NamingRules.serverProfile(service: service, host: host, inventory: inventory).identity)
        }

        func client(_ service: Service, _ host: Host) throws -> Leaf {
            try leaf(NamingRules.clientProfile(service: service, host: host, inventory: inventory).identity)
        }
    }

    static func files(for host: Host, services: [Service], minicluster: Bool, context: Context) throws -> [BundleFile] {
        var files = trustAnchors(context)
        for service in services {
            switch service.name {
            case "opensearch": files += try openSearch(service, host, context)
            case "minio": files += try minio(service, host, context)
            case "patroni": files += try patroni(service, host, context)
            case "etcd": files += try etcd(service, host, context)
            case NamingRules.haproxyService: files += try haproxy(service, host, context)
            case "nginx": files += try nginx(service, host, context)
            default: files += try credentials(service, host, context)
            }
            if minicluster && knownServices.contains(service.name) { files += try credentials(service, host, context) }
        }
        if minicluster || services.contains(where: { !knownServices.contains($0.name) }) {
            files.append(BundleFile("etc/credentials/x509/ca.pem", context.rootPEM, mode: 0o644, owner: "root"))
        }
        return files
    }

    static func trustAnchors(_ context: Context) -> [BundleFile] {
        context.roots.flatMap { root -> [BundleFile] in
            let name = anchorName(root)
            return [BundleFile("etc/pki/ca-trust/source/anchors/\(name).pem", root, mode: 0o644, owner: "root"),
                    BundleFile("usr/local/share/ca-certificates/\(name).crt", root, mode: 0o644, owner: "root")]
        }
    }

    /// `cinc-root-ca` for "Cinc Root CA": the file name of the root in the system trust stores.
    static func anchorName(_ rootPEM: Data) -> String {
        let commonName = (try? Certificate(pem: rootPEM).subject.commonName) ?? nil
        let slug = (commonName ?? "chpki-root-ca").lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" }
        return String(slug).split(separator: "-").joined(separator: "-")
    }

    static func openSearch(_ service: Service, _ host: Host, _ context: Context) throws -> [BundleFile] {
        let owner = "opensearch"
        let server = try context.server(service, host)
        var files = [
            BundleFile("etc/opensearch/full-chain.crt", Data(server.chainPEM.utf8), mode: 0o644, owner: owner),
            BundleFile("etc/opensearch/private.key", Data(server.keyPEM.utf8), mode: 0o600, owner: owner),
            BundleFile("etc/opensearch/root-ca.pem", context.rootPEM, mode: 0o644, owner: owner),
        ]
        if let admin = NamingRules.adminProfile(inventory: context.inventory) {
            let leaf = try context.leaf(admin.identity)
            files.append(BundleFile("etc/opensearch/admin.pem", Data(leaf.chainPEM.utf8), mode: 0o644, owner: owner))
            files.append(BundleFile("etc/opensearch/admin-key.pem", Data(leaf.keyPEM.utf8), mode: 0o600, owner: owner))
        }
        let lists = try NodesDN(inventory: context.inventory, service: service.name)
        let snippet = try context.templates.render("opensearch-security.yml", [
            "host": host.name, "nodes_dn": lists.nodesDN.map(NodesDN.quote), "admin_dn": lists.adminDN.map(NodesDN.quote),
        ])
        files.append(BundleFile("etc/opensearch/opensearch-security.yml", snippet, mode: 0o644, owner: owner))
        return files
    }

    static func minio(_ service: Service, _ host: Host, _ context: Context) throws -> [BundleFile] {
        let owner = "minio-user", base = "home/minio-user/.minio/certs"
        let server = try context.server(service, host)
        var files = [
            BundleFile("\(base)/public.crt", Data(server.chainPEM.utf8), mode: 0o644, owner: owner),
            // Exactly one PEM block: MinIO fails to start on an EC PARAMETERS block before the key.
            BundleFile("\(base)/private.key", Data(server.keyPEM.utf8), mode: 0o600, owner: owner),
            BundleFile("\(base)/CAs/root-ca.crt", context.rootPEM, mode: 0o644, owner: owner),
        ]
        // Trust files hold roots only (SPEC §4): intermediates travel in public.crt's chain, so a new
        // intermediate (growth) changes nothing in an existing host's CAs/.
        let peers = context.inventory.hosts(of: service)
        for peer in peers where peer.name != host.name {
            // The peer's public.crt, as reference 000 copies it: its leaf and the intermediate that
            // signed it, so the copy names its own issuer whichever intermediate that is.
            let leaf = try context.server(service, peer)
            files.append(BundleFile("\(base)/CAs/\(peer.shortName).crt", Data(leaf.chainPEM.utf8), mode: 0o644, owner: owner))
        }
        let snippet = try context.templates.render("minio.tls", [
            "host": host.name,
            "volumes": peers.enumerated().map { index, peer in ["fqdn": peer.name, "last": index == peers.count - 1] as [String: Any] },
        ])
        files.append(BundleFile("etc/default/minio.tls", snippet, mode: 0o644, owner: "root"))
        return files
    }

    static func patroni(_ service: Service, _ host: Host, _ context: Context) throws -> [BundleFile] {
        // PostgreSQL refuses a key readable by group or other unless it is root-owned 0640.
        let owner = "postgres"
        let server = try context.server(service, host)
        var files = [
            BundleFile("etc/ssl/server-cert.pem", Data(server.chainPEM.utf8), mode: 0o644, owner: owner),
            BundleFile("etc/ssl/private.key", Data(server.keyPEM.utf8), mode: 0o600, owner: owner),
            BundleFile("etc/ssl/root-ca.pem", context.rootPEM, mode: 0o644, owner: owner),
        ]
        if service.enableClient {
            let client = try context.client(service, host)
            files.append(BundleFile("etc/ssl/patroni-client.pem", Data(client.chainPEM.utf8), mode: 0o644, owner: owner))
            files.append(BundleFile("etc/ssl/patroni-client.key", Data(client.keyPEM.utf8), mode: 0o600, owner: owner))
        }
        let etcdHosts = context.inventory.service(named: "etcd").map { context.inventory.hosts(of: $0) } ?? context.inventory.hosts(of: service)
        let tls = try context.templates.render("patroni-tls.yml", [
            "host": host.name, "ip": host.ips.first?.description ?? host.name,
            "etcd": etcdHosts.enumerated().map { index, peer in
                ["ip": peer.ips.first?.description ?? peer.name, "last": index == etcdHosts.count - 1] as [String: Any]
            },
        ])
        let clients = NamingRules.profiles(for: context.inventory).filter { $0.identity.kind == .client }
            .map { ["cn": $0.identity.name, "role": $0.identity.service ?? ""] }
        files.append(BundleFile("etc/patroni/tls.yml", tls, mode: 0o644, owner: owner))
        files.append(BundleFile("etc/patroni/pg_hba.conf", try context.templates.render("pg_hba.conf", [:]), mode: 0o644, owner: owner))
        files.append(BundleFile("etc/patroni/pg_ident.conf", try context.templates.render("pg_ident.conf", ["clients": clients]),
                                mode: 0o644, owner: owner))
        return files
    }

    static func etcd(_ service: Service, _ host: Host, _ context: Context) throws -> [BundleFile] {
        let owner = "etcd", base = "etc/etcd/pki"
        let server = try context.server(service, host)
        var files = [
            BundleFile("\(base)/ca.pem", context.rootPEM, mode: 0o644, owner: owner),
            BundleFile("\(base)/server.pem", Data(server.chainPEM.utf8), mode: 0o644, owner: owner),
            BundleFile("\(base)/server-key.pem", Data(server.keyPEM.utf8), mode: 0o600, owner: owner),
            BundleFile("\(base)/peer.pem", Data(server.chainPEM.utf8), mode: 0o644, owner: owner),
            BundleFile("\(base)/peer-key.pem", Data(server.keyPEM.utf8), mode: 0o600, owner: owner),
        ]
        if service.enableClient {
            let client = try context.client(service, host)
            files.append(BundleFile("\(base)/client.pem", Data(client.chainPEM.utf8), mode: 0o644, owner: owner))
            files.append(BundleFile("\(base)/client-key.pem", Data(client.keyPEM.utf8), mode: 0o600, owner: owner))
        }
        let members = context.inventory.hosts(of: service)
        let ip = host.ips.first?.description ?? host.name
        let snippet = try context.templates.render("etcd-tls.env", [
            "host": host.name, "ip": ip, "ip_is_loopback": ip == "127.0.0.1",
            "members": members.enumerated().map { index, member in
                ["name": member.name, "ip": member.ips.first?.description ?? member.name, "last": index == members.count - 1] as [String: Any]
            },
        ])
        files.append(BundleFile("etc/etcd/tls.env", snippet, mode: 0o644, owner: owner))
        return files
    }

    static func haproxy(_ service: Service, _ host: Host, _ context: Context) throws -> [BundleFile] {
        var files: [BundleFile] = []
        for vip in context.inventory.vips {
            let profile = NamingRules.vipProfile(vip: vip, balancer: host, service: service, inventory: context.inventory)
            let leaf = try context.leaf(profile.identity)
            // HAProxy takes the first certificate as the leaf, the rest as its chain; the key may follow.
            files.append(BundleFile("etc/ssl/haproxy/\(vip.fqdn).pem", Data((leaf.chainPEM + leaf.keyPEM).utf8), mode: 0o600, owner: "root"))
        }
        // One bind per address: HAProxy chooses among the crt arguments of a single bind by SNI.
        var addresses: [String] = []
        var vipsByAddress: [String: [VIP]] = [:]
        for vip in context.inventory.vips {
            for address in vip.ips.map(\.description) {
                if vipsByAddress[address] == nil { addresses.append(address) }
                vipsByAddress[address, default: []].append(vip)
            }
        }
        let snippet = try context.templates.render("haproxy-tls.cfg", [
            "host": host.name,
            "binds": addresses.map { address -> [String: Any] in
                let vips = vipsByAddress[address]!
                return ["ip": address, "names": vips.map(\.name).joined(separator: ", "), "fqdns": vips.map(\.fqdn)]
            },
        ])
        files.append(BundleFile("etc/haproxy/chpki-tls.cfg", snippet, mode: 0o644, owner: "root"))
        return files
    }

    static func nginx(_ service: Service, _ host: Host, _ context: Context) throws -> [BundleFile] {
        let directory = context.flavor.configDirectory
        let server = try context.server(service, host)
        let snippet = try context.templates.render("nginx-tls.rb", [
            "host": host.name, "directory": "/" + directory, "config": "/\(directory)/\(context.flavor.serverConfigName)",
        ])
        return [
            BundleFile("\(directory)/server.pem", Data(server.chainPEM.utf8), mode: 0o644, owner: "root"),
            BundleFile("\(directory)/server.key", Data(server.keyPEM.utf8), mode: 0o600, owner: "root"),
            BundleFile("\(directory)/\(context.flavor.serverConfigName).tls", snippet, mode: 0o644, owner: "root"),
        ]
    }

    /// minicluster's layout (reference 002): /etc/credentials/x509/<service>/{server,client}/.
    static func credentials(_ service: Service, _ host: Host, _ context: Context) throws -> [BundleFile] {
        let base = "etc/credentials/x509/\(service.name)"
        var files: [BundleFile] = []
        if service.enableServer && service.name != NamingRules.haproxyService {
            let server = try context.server(service, host)
            files.append(BundleFile("\(base)/server/cert.pem", Data(server.chainPEM.utf8), mode: 0o644, owner: "root"))
            files.append(BundleFile("\(base)/server/private_key.pem", Data(server.keyPEM.utf8), mode: 0o600, owner: "root"))
        }
        if service.enableClient {
            let client = try context.client(service, host)
            files.append(BundleFile("\(base)/client/cert.pem", Data(client.chainPEM.utf8), mode: 0o644, owner: "root"))
            files.append(BundleFile("\(base)/client/private_key.pem", Data(client.keyPEM.utf8), mode: 0o600, owner: "root"))
        }
        return files
    }
}
