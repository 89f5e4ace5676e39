import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiSecretBundles
@testable import ChpkiBundles
@testable import ChpkiCA

/// Host layouts from the service descriptors, without a CA: leaves are placeholders (the layout
/// never parses them), so these run in milliseconds.
@Suite("bundle layouts from descriptors")
struct BundleLayoutTests {
    static let templates = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("templates").path

    static func inventory(minio: Int = 3, ip: (Int) -> String = { "10.\($0 / 250).0.\($0 % 250)" }) throws -> Inventory {
        var yaml = """
            domain: example.com
            subject: {O: Example, C: US}
            hosts:

            """
        for index in 1...max(minio, 3) {
            yaml += "  - {name: backend-\(index).example.com, ips: [\(ip(index))], groups: [backend]}\n"
        }
        yaml += """
              - {name: frontend-1.example.com, ips: [10.0.1.1], groups: [frontend]}
            services:
              opensearch: {hosts: [backend-1, backend-2, backend-3], enable_client: false, server_cert_mode: both}
              patroni: {hosts: [backend-1, backend-2, backend-3]}
              etcd: {hosts: [backend-1, backend-2, backend-3], server_cert_mode: both}
              minio: {hosts: backend}
              nginx: {hosts: frontend}
              redis: {hosts: frontend}

            """
        return try Inventory.parse(yaml: yaml, path: "cluster.yml")
    }

    /// Every certificate the inventory implies, as placeholder PEM naming its identity.
    static func facts(_ inventory: Inventory, flavor: FrontendFlavor = .cinc) throws -> ClusterFacts {
        var leaves: [CertificateIdentity: BundleInputs.Leaf] = [:]
        for (index, profile) in NamingRules.profiles(for: inventory).enumerated() {
            let text = Data("CERT \(profile.identity)\n".utf8)
            leaves[profile.identity] = .init(certificatePEM: text, keyPEM: SecretBytes(Data("KEY \(profile.identity)\n".utf8)),
                                             chainPEM: text + Data("INTERMEDIATE\n".utf8),
                                             notBefore: Date(timeIntervalSince1970: 1_800_000_000 + Double(index)))
        }
        let inputs = BundleInputs(roots: [Data("ROOT\n".utf8)], intermediates: [("01", Data("INTERMEDIATE\n".utf8))], leaves: leaves,
                                  caSHA256: String(repeating: "ab", count: 32), caCreated: Date(timeIntervalSince1970: 1_700_000_000))
        return ClusterFacts(inventory: inventory, inputs: inputs, templates: try Templates(explicit: templates, environment: [:]), flavor: flavor)
    }

    static func bundle(_ host: String, inventory: Inventory, minicluster: Bool = false, flavor: FrontendFlavor = .cinc) throws -> HostBundle {
        let facts = try facts(inventory, flavor: flavor)
        let plan = try BundlePlan(facts: facts, services: inventory.services, minicluster: minicluster)
        return try plan.bundle(for: try #require(inventory.host(named: host)))
    }

    @Test("each service's files, owners and modes; keys 0600; the directories chpki owns")
    func backendLayout() throws {
        let bundle = try Self.bundle("backend-1", inventory: try Self.inventory())
        let files = Dictionary(uniqueKeysWithValues: bundle.files.map { ($0.path, $0) })
        #expect(bundle.services == ["etcd", "minio", "opensearch", "patroni"])
        for (path, owner, mode, service) in [
            ("etc/opensearch/private.key", "opensearch", UInt16(0o600), "opensearch"),
            ("etc/opensearch/full-chain.crt", "opensearch", 0o644, "opensearch"),
            ("home/minio-user/.minio/certs/private.key", "minio-user", 0o600, "minio"),
            ("etc/ssl/private.key", "postgres", 0o600, "patroni"),
            ("etc/ssl/patroni-client.key", "postgres", 0o600, "patroni"),
            ("etc/etcd/pki/peer-key.pem", "etcd", 0o600, "etcd"),
            ("etc/pki/ca-trust/source/anchors/chpki-root-ca.pem", "root", 0o644, "trust"),
            ("usr/local/share/ca-certificates/chpki-root-ca.crt", "root", 0o644, "trust"),
        ] {
            let file = try #require(files[path], "\(path) missing")
            #expect((file.owner, file.group, file.mode, file.service) == (owner, owner, mode, service), "\(path)")
        }
        #expect(files.values.filter { $0.path.hasSuffix("key") || $0.path.hasSuffix("-key.pem") }.allSatisfy { $0.mode == 0o600 })
        // Trust files hold roots only: the intermediate travels in the chains.
        #expect(files["etc/etcd/pki/ca.pem"]?.contents == Data("ROOT\n".utf8))
        #expect(files["etc/opensearch/full-chain.crt"].map { String(decoding: $0.contents, as: UTF8.self).hasSuffix("INTERMEDIATE\n") } == true)
        #expect(bundle.directories.map(\.path) == ["etc/etcd/pki", "etc/patroni", "home/minio-user/.minio",
                                                    "home/minio-user/.minio/certs", "home/minio-user/.minio/certs/CAs"])
        let pki = try #require(bundle.directories.first { $0.path == "etc/etcd/pki" })
        #expect(pki.mode == 0o700 && pki.owner == "etcd" && pki.service == "etcd")
        #expect(bundle.files.map(\.path) == bundle.files.map(\.path).sorted())
        // The archive time is the newest notBefore of the host's leaves, not the clock.
        #expect(bundle.modified > Date(timeIntervalSince1970: 1_800_000_000))
    }

    @Test("nginx paths follow FrontendFlavor; services without a layout get minicluster's")
    func frontendLayout() throws {
        for flavor in FrontendFlavor.allCases {
            let bundle = try Self.bundle("frontend-1", inventory: try Self.inventory(), flavor: flavor)
            let paths = Set(bundle.files.map(\.path))
            #expect(paths.contains("\(flavor.configDirectory)/server.key"))
            #expect(paths.contains("\(flavor.configDirectory)/\(flavor.serverConfigName).tls"))
            #expect(paths.contains("etc/credentials/x509/redis/server/private_key.pem"))
            #expect(paths.contains("etc/credentials/x509/ca.pem"))
            #expect(bundle.directories.map(\.path).contains("etc/credentials/x509/redis/server"))
            #expect(bundle.services == ["nginx", "redis"])
        }
    }

    @Test("MinIO CAs/ holds the peers' certificates up to the peer limit, the CA certificates only above")
    func minioPeerRule() throws {
        let small = try Self.bundle("backend-1", inventory: try Self.inventory(minio: 4))
        #expect(small.files.filter { $0.path.hasPrefix("home/minio-user/.minio/certs/CAs/backend-") }.map(\.path)
                == ["home/minio-user/.minio/certs/CAs/backend-2.crt", "home/minio-user/.minio/certs/CAs/backend-3.crt",
                    "home/minio-user/.minio/certs/CAs/backend-4.crt"])
        let large = try Self.bundle("backend-1", inventory: try Self.inventory(minio: MinIOBundle.peerCertificateLimit + 1))
        let authorities = large.files.filter { $0.path.hasPrefix("home/minio-user/.minio/certs/CAs/") }.map(\.path)
        #expect(authorities == ["home/minio-user/.minio/certs/CAs/root-ca.crt"])  // roots only: intermediates travel in the chains
        // MINIO_VOLUMES still names every host.
        let settings = try #require(large.files.first { $0.path == "etc/default/minio.tls" })
        #expect(String(decoding: settings.contents, as: UTF8.self).contains("backend-\(MinIOBundle.peerCertificateLimit + 1).example.com"))
    }

    @Test("etcd adds a 127.0.0.1 listener only when the host's address is not loopback (127.0.0.0/8, ::1)")
    func etcdLoopback() throws {
        func listen(_ inventory: Inventory) throws -> String {
            let bundle = try Self.bundle("backend-2", inventory: inventory)
            let text = String(decoding: try #require(bundle.files.first { $0.path == "etc/etcd/tls.env" }).contents, as: UTF8.self)
            return try #require(text.split(separator: "\n").first { $0.hasPrefix("ETCD_LISTEN_CLIENT_URLS=") }.map(String.init))
        }
        #expect(try listen(Self.inventory()) == "ETCD_LISTEN_CLIENT_URLS=https://10.0.0.2:2379,https://127.0.0.1:2379")
        #expect(try listen(Self.inventory(ip: { "127.0.0.1\($0)" })) == "ETCD_LISTEN_CLIENT_URLS=https://127.0.0.12:2379")
        #expect(ClusterFacts.isLoopback("::1") && ClusterFacts.isLoopback("127.255.0.3") && !ClusterFacts.isLoopback("10.0.0.1"))
    }

    @Test("pg_hba.conf admits the cluster's client certificates for replication; pg_ident.conf maps them")
    func patroniReplication() throws {
        let bundle = try Self.bundle("backend-1", inventory: try Self.inventory())
        let hba = String(decoding: try #require(bundle.files.first { $0.path == "etc/patroni/pg_hba.conf" }).contents, as: UTF8.self)
        let lines = hba.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(lines.contains("hostssl replication patroni 0.0.0.0/0 cert map=chpki"))
        #expect(lines.contains("hostssl replication patroni ::/0 cert map=chpki"))
        let ident = String(decoding: try #require(bundle.files.first { $0.path == "etc/patroni/pg_ident.conf" }).contents, as: UTF8.self)
        #expect(ident.contains("chpki      patroni@backend-2  patroni"))
    }

    @Test("the same CA state gives the same archive bytes; gzip header without time or name")
    func deterministicArchive() throws {
        let inventory = try Self.inventory()
        func archive() throws -> Data {
            let bundle = try Self.bundle("backend-3", inventory: inventory)
            return try Gzip.compress(try Tar.archive(bundle.tarEntries(manifestJSON: try bundle.manifest().encoded())))
        }
        let first = try archive()
        #expect(try archive() == first)
        #expect(Array(first.prefix(10)) == [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])  // no FNAME, MTIME 0, OS Unix
        let members = try Tar.read(try Gzip.decompress(first))
        #expect(members.map(\.path) == members.map(\.path).sorted())
        #expect(Set(members.map(\.modified)).count == 1)
        #expect(members.contains { $0.path == BundleManifest.path })
        #expect(!members.contains { $0.path == "etc" || $0.path == "home" || $0.path == "MANIFEST.json" })
    }

    @Test("the manifest lists every file and directory with its service; unsafe manifests are refused")
    func manifestShape() throws {
        let bundle = try Self.bundle("backend-1", inventory: try Self.inventory())
        let manifest = try bundle.manifest()
        #expect(manifest.format == 3 && manifest.generator == "chpki")
        // Format 3: every file's role, and each service's operations.
        let roles = Dictionary(uniqueKeysWithValues: manifest.files.map { ($0.path, $0.role) })
        #expect(roles["etc/etcd/pki/ca.pem"] == .trust && roles["etc/etcd/pki/server.pem"] == .leaf && roles["etc/etcd/pki/server-key.pem"] == .key)
        #expect(roles["etc/etcd/tls.env"] == .config && roles["home/minio-user/.minio/certs/CAs/backend-2.crt"] == .trust)
        #expect(roles["usr/local/share/ca-certificates/chpki-root-ca.crt"] == .trust)
        #expect(manifest.files.allSatisfy { $0.role != nil })
        let operations = try #require(manifest.operations)
        #expect(Set(operations.keys) == ["trust", "etcd", "minio", "opensearch", "patroni"])
        #expect(operations["etcd"]?.onTrust == [["systemctl", "restart", "etcd"]] && operations["etcd"]?.serial == true)
        #expect(operations["etcd"]?.health.first?.kind == .etcd && operations["etcd"]?.health.first?.cafile == "/etc/etcd/pki/ca.pem")
        #expect(operations["trust"]?.onTrust == [["update-ca-certificates"]] && operations["trust"]?.onLeaf == [])
        #expect(operations["patroni"]?.health.map(\.kind) == [.patroniREST, .postgres])
        #expect(manifest.files.map(\.path) == bundle.files.map(\.path))
        #expect(manifest.directories.map(\.path) == bundle.directories.map(\.path))
        let key = try #require(manifest.files.first { $0.path == "etc/ssl/private.key" })
        #expect(key.mode == "0600" && key.owner == "postgres" && key.service == "patroni")
        let json = try manifest.encoded()
        #expect(try BundleManifest.decode(json, label: "m") == manifest)
        for bad in ["../etc/shadow", "/etc/shadow", "etc//x", "etc/./x"] {
            var broken = manifest
            broken.files[0].path = bad
            #expect(throws: ChpkiError.self) { try BundleManifest.decode(try broken.encoded(), label: "m") }
        }
        #expect(throws: ChpkiError.self) { try BundleManifest.decode(Data("{\"generator\":\"chpki\"}".utf8), label: "m") }
        #expect(throws: ChpkiError.self) { try BundleManifest.decode(Data([0xff, 0x00]), label: "m") }
    }

    @Test("the hand-written manifest JSON is byte for byte what JSONEncoder writes")
    func manifestBytesMatchFoundation() throws {
        let bundle = try Self.bundle("backend-1", inventory: try Self.inventory())
        let manifest = try bundle.manifest()
        #expect(try manifest.encoded() == manifest.encodedByFoundation())
        let empty = BundleManifest(host: "h", services: [], caSHA256: "", directories: [], files: [])
        #expect(try empty.encoded() == empty.encodedByFoundation())
        let awkward = (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }.joined() + "\"\\/\u{7f}\u{2028}é😀 <>&'"
        let odd = BundleManifest(host: awkward, services: [awkward, "b"], caSHA256: awkward,
                                 directories: [.init(path: awkward, owner: "o", group: awkward, mode: "0700", service: "s")],
                                 files: [.init(path: "a/b", sha256: awkward, owner: awkward, group: "g", mode: "0600", service: awkward),
                                         .init(path: "c", sha256: "", owner: "", group: "", mode: "", service: "")])
        #expect(try odd.encoded() == odd.encodedByFoundation())
        // Format 3's roles, a leaf's root, and operations with every optional field both ways.
        let check = HealthCheck(.postgres, address: awkward, port: 5432, serverName: awkward, cafile: awkward, certfile: awkward, keyfile: "/k",
                                service: awkward)
        let ops = ServiceOperations(onLeaf: [[awkward, "b"], []], onTrust: [], serial: true,
                                    health: [check, HealthCheck(.tls, address: "a", port: 1, serverName: "s", cafile: "/c")])
        let roled = BundleManifest(host: "h", services: ["a"], caSHA256: "00", directories: [],
                                   files: [.init(path: "a", sha256: "1", owner: "o", group: "g", mode: "0644", service: "s", role: .leaf, root: awkward),
                                           .init(path: "b", sha256: "2", owner: "o", group: "g", mode: "0600", service: "s", role: .key)],
                                   operations: [awkward: ops, "b": .none, "a": ServiceOperations(onLeaf: [["x"]])])
        #expect(try roled.encoded() == roled.encodedByFoundation())
        let format2 = BundleManifest(host: "h", services: [], caSHA256: "", directories: [], files: [], operations: nil)
        #expect(try format2.encoded() == format2.encodedByFoundation())
    }

    @Test("laying out a host looks facts up: 300 MinIO hosts, each tree bounded")
    func linearLayout() throws {
        // Not a timing assertion: the host with the most peers gets a bounded tree.
        let inventory = try Self.inventory(minio: 300)
        let facts = try Self.facts(inventory)
        let plan = try BundlePlan(facts: facts, services: inventory.services, minicluster: false)
        let bundle = try plan.bundle(for: try #require(inventory.host(named: "backend-300")))
        #expect(bundle.files.reduce(0) { $0 + $1.contents.count } < 100_000)
        #expect(plan.hosts.count == 301)
    }

    @Test("--installed on the system root: the roots must be in the activated system bundle")
    func trustActivated() throws {
        let key = try PrivateKey.generate(.ecP256)
        let now = Date()
        func root(_ name: String) throws -> Data {
            try CertificateTemplate(subject: DistinguishedName([.init("CN", name)]), serial: .random(), notBefore: now.addingTimeInterval(-60),
                                    notAfter: now.addingTimeInterval(86400), certificateAuthority: .init(), keyUsage: [.keyCertSign, .cRLSign]
            ).sign(publicKeyOf: key, by: Signer(certificate: nil, key: key)).pemEncoded()
        }
        let ours = try root("Our Root"), theirs = try root("Some Other Root")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chpki-trust-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let me = try #require(try FileStatus.of(directory))
        let anchor = BundleFile("etc/pki/ca-trust/source/anchors/our-root.pem", ours, mode: 0o644, owner: me.owner, group: me.group, service: "trust")
        let bundle = HostBundle(host: "h.example.com", services: [], files: [anchor], directories: [], caSHA256: "00", fallbackModified: now)
        try BundleWriter.writeTree(bundle, manifestJSON: try bundle.manifest().encoded(), at: directory + "/root")
        let tree = directory + "/root"
        let verifier = BundleVerifier(now: now, installed: true, systemRoot: tree)
        #expect(verifier.verify(tree: tree).violations.contains { $0.contains("no system CA bundle") })
        let system = tree + "/etc/ssl/certs/ca-certificates.crt"
        try FileManager.default.createDirectory(atPath: tree + "/etc/ssl/certs", withIntermediateDirectories: true)
        try theirs.write(to: URL(fileURLWithPath: system))
        #expect(verifier.verify(tree: tree).violations.contains { $0.contains("does not hold the root 'Our Root'") && $0.contains("update-ca-certificates") })
        try (theirs + ours).write(to: URL(fileURLWithPath: system))
        #expect(verifier.verify(tree: tree).violations == [])
        // Elsewhere than the system root, the system bundle is not looked at.
        try theirs.write(to: URL(fileURLWithPath: system))
        #expect(BundleVerifier(now: now, installed: true, systemRoot: "/").verify(tree: tree).violations == [])
    }
}
