import Foundation

/// `chpki verify --bundle`: checks laid-out host trees against SPEC §4 and what each service
/// actually accepts (ENGINEERING.md), one violation per line.
public struct BundleVerifier {
    public let now: Date
    private(set) var violations: [String] = []

    public init(now: Date) {
        self.now = now
    }

    /// Every host tree under `directory` (or `directory` itself when it holds a MANIFEST.json).
    public static func hostTrees(in directory: String) throws -> [String] {
        if FileManager.default.fileExists(atPath: Path.join(directory, HostBundle.manifestName)) { return [directory] }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw ChpkiError.input(file: directory, field: "--bundle", "no such directory")
        }
        let trees = entries.sorted().map { Path.join(directory, $0) }
            .filter { FileManager.default.fileExists(atPath: Path.join($0, HostBundle.manifestName)) }
        guard !trees.isEmpty else { throw ChpkiError.input(file: directory, field: "--bundle", "no host tree with a MANIFEST.json") }
        return trees
    }

    public mutating func verify(tree: String) -> [String] {
        violations = []
        let label = Path.name(of: tree)
        guard let data = FileManager.default.contents(atPath: Path.join(tree, HostBundle.manifestName)),
              let manifest = try? JSONDecoder().decode(HostBundle.Manifest.self, from: data) else {
            return ["\(label)/\(HostBundle.manifestName): missing or not valid JSON"]
        }
        let host = manifest.host
        let files = TreeFiles(root: tree, label: label)
        checkManifest(manifest, files)
        let anchors = files.list("etc/pki/ca-trust/source/anchors").filter { $0.hasSuffix(".pem") }
            .flatMap { files.certificates("etc/pki/ca-trust/source/anchors/\($0)") }
        if anchors.isEmpty { report(files, "etc/pki/ca-trust/source/anchors", "no root CA trust anchor") }
        let root = anchors.isEmpty ? nil : anchors
        let services = Set(manifest.services)

        if services.contains("opensearch") {
            let key = checkPKCS8(files, "etc/opensearch/private.key", service: "OpenSearch")
            checkLeaf(files, "etc/opensearch/full-chain.crt", key: key, names: [host], root: root)
            if files.exists("etc/opensearch/admin.pem") {
                let adminKey = checkPKCS8(files, "etc/opensearch/admin-key.pem", service: "OpenSearch")
                checkLeaf(files, "etc/opensearch/admin.pem", key: adminKey, names: [], root: root)
            }
        }
        if services.contains("minio") {
            let base = "home/minio-user/.minio/certs"
            let blocks = files.blocks("\(base)/private.key")
            if blocks.count != 1 {
                report(files, "\(base)/private.key", "holds \(blocks.count) PEM blocks; MinIO needs exactly one (the key)")
            }
            checkLeaf(files, "\(base)/public.crt", key: files.key("\(base)/private.key"), names: [host], root: root)
            let domain = host.split(separator: ".").dropFirst().joined(separator: ".")
            for peer in files.list("\(base)/CAs") where peer.hasSuffix(".crt") && !["root-ca.crt", "intermediate-ca.crt"].contains(peer) {
                let short = String(peer.dropLast(4))
                checkLeaf(files, "\(base)/CAs/\(peer)", key: nil, names: [domain.isEmpty ? short : "\(short).\(domain)"], root: root)
            }
        }
        if services.contains("patroni") {
            checkPostgresKey(files, manifest, "etc/ssl/private.key")
            checkLeaf(files, "etc/ssl/server-cert.pem", key: files.key("etc/ssl/private.key"), names: [host], root: root)
            if files.exists("etc/ssl/patroni-client.pem") {
                checkPostgresKey(files, manifest, "etc/ssl/patroni-client.key")
                checkLeaf(files, "etc/ssl/patroni-client.pem", key: files.key("etc/ssl/patroni-client.key"), names: [], root: root)
            }
        }
        if services.contains("etcd") {
            let addresses = etcdAddresses(files)
            for (certificate, key) in [("server.pem", "server-key.pem"), ("peer.pem", "peer-key.pem")] {
                let path = "etc/etcd/pki/\(certificate)"
                checkLeaf(files, path, key: files.key("etc/etcd/pki/\(key)"), names: [host] + addresses, root: root)
                if let leaf = files.certificates(path).first {
                    let usages = Set(leaf.extendedKeyUsageNames)
                    if !usages.isSuperset(of: ["serverAuth", "clientAuth"]) {
                        report(files, path, "EKU is \(leaf.extendedKeyUsageNames.joined(separator: "+")); etcd needs serverAuth and clientAuth (its gateway and peers act as clients)")
                    }
                }
            }
        }
        if services.contains(NamingRules.haproxyService) {
            for name in files.list("etc/ssl/haproxy") where name.hasSuffix(".pem") {
                checkHAProxyPEM(files, "etc/ssl/haproxy/\(name)", vip: String(name.dropLast(4)), root: root)
            }
        }
        if services.contains("nginx") {
            for directory in ["etc/cinc-project", "etc/opscode"] where files.exists("\(directory)/server.pem") {
                checkLeaf(files, "\(directory)/server.pem", key: files.key("\(directory)/server.key"), names: [host], root: root)
            }
        }
        return violations
    }

    // MARK: Checks

    mutating func checkManifest(_ manifest: HostBundle.Manifest, _ files: TreeFiles) {
        for entry in manifest.files {
            guard let data = files.data(entry.path) else {
                report(files, entry.path, "listed in MANIFEST.json but missing")
                continue
            }
            let digest = (try? Digest.sha256(data)).map { Hex.upper($0).lowercased() }
            if digest != entry.sha256 { report(files, entry.path, "content differs from MANIFEST.json (sha256)") }
            if let mode = files.mode(entry.path), String(format: "%04o", mode) != entry.mode {
                report(files, entry.path, "mode is \(String(format: "%04o", mode)), MANIFEST.json says \(entry.mode)")
            }
        }
    }

    /// OpenSearch's plugin loads only unencrypted PKCS#8, and never Ed25519.
    mutating func checkPKCS8(_ files: TreeFiles, _ path: String, service: String) -> PrivateKey? {
        let labels = files.blocks(path).map(\.label)
        guard let label = labels.first(where: { $0.contains("PRIVATE KEY") }) else {
            report(files, path, "no private key")
            return nil
        }
        if label != "PRIVATE KEY" {
            report(files, path, "is \(label) (\(label == "RSA PRIVATE KEY" ? "PKCS#1" : label == "EC PRIVATE KEY" ? "SEC1" : "encrypted")); \(service) needs unencrypted PKCS#8 'BEGIN PRIVATE KEY'")
        }
        let key = files.key(path)
        if key?.keyType == .ed25519 { report(files, path, "is Ed25519, which \(service) cannot load") }
        return key
    }

    /// PostgreSQL refuses a key readable by group or other, unless root-owned and 0640.
    mutating func checkPostgresKey(_ files: TreeFiles, _ manifest: HostBundle.Manifest, _ path: String) {
        guard let mode = files.mode(path) else { return }
        let owner = manifest.files.first { $0.path == path }?.owner ?? "?"
        let acceptable = (mode & 0o077 == 0) || (owner == "root" && mode == 0o640)
        if !acceptable {
            report(files, path, "mode \(String(format: "%04o", mode)) owned by \(owner): PostgreSQL refuses it (0600 postgres, or 0640 root)")
        }
    }

    /// HAProxy takes the first certificate as the leaf and needs the key in the same file.
    mutating func checkHAProxyPEM(_ files: TreeFiles, _ path: String, vip: String, root: [Certificate]?) {
        let blocks = files.blocks(path)
        guard blocks.first?.label == "CERTIFICATE" else {
            report(files, path, "the first PEM block is \(blocks.first?.label ?? "missing"); HAProxy needs the leaf certificate first")
            return
        }
        guard blocks.contains(where: { $0.label.contains("PRIVATE KEY") }) else {
            report(files, path, "holds no private key; HAProxy needs it in the same file")
            return
        }
        checkLeaf(files, path, key: files.key(path), names: [vip], root: root)
    }

    /// The first certificate of `path`: its key, names, validity and issuer.
    mutating func checkLeaf(_ files: TreeFiles, _ path: String, key: PrivateKey?, names: [String], root: [Certificate]?) {
        let chain = files.certificates(path)
        guard let leaf = chain.first else {
            report(files, path, files.exists(path) ? "holds no certificate" : "missing")
            return
        }
        if let key, !key.matches(leaf) {
            report(files, path, "the certificate does not match its private key")
        }
        if leaf.notAfter <= now { report(files, path, "expired \(RFC3339.format(leaf.notAfter))") }
        if leaf.notBefore > now { report(files, path, "not valid before \(RFC3339.format(leaf.notBefore))") }
        let sans = leaf.subjectAlternativeNames
        for name in names where !sans.contains(where: { covers($0, name) }) {
            report(files, path, "no SAN for \(name)")
        }
        if let root, !issuedBy(chain + files.intermediates, root) {
            report(files, path, "not issued by the bundle's root CA")
        }
    }

    func covers(_ san: GeneralName, _ name: String) -> Bool {
        switch san {
        case let .dns(dns): return dns.lowercased() == name.lowercased()
        case let .ip(bytes): return IPAddress(bytes: bytes)?.description == IPAddress(name)?.description && IPAddress(name) != nil
        default: return false
        }
    }

    /// The leaf chains to one of `roots` through the certificates that follow it in its file.
    func issuedBy(_ chain: [Certificate], _ roots: [Certificate]) -> Bool {
        var current = chain[0]
        var rest = Array(chain.dropFirst())
        while true {
            if roots.contains(where: { current.isSigned(by: $0) }) { return true }
            guard let index = rest.firstIndex(where: { current.isSigned(by: $0) }) else { return false }
            current = rest.remove(at: index)
        }
    }

    /// The IPs etcd listens on for peers, from the tree's tls.env: peers are checked against them.
    func etcdAddresses(_ files: TreeFiles) -> [String] {
        guard let text = files.data("etc/etcd/tls.env").map({ String(decoding: $0, as: UTF8.self) }) else { return [] }
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

    mutating func report(_ files: TreeFiles, _ path: String, _ message: String) {
        violations.append("\(files.label)/\(path): \(message)")
    }
}

/// Read access to one host tree, tolerant of anything missing or malformed (the checks report it).
struct TreeFiles {
    let root: String
    let label: String

    func data(_ path: String) -> Data? { FileManager.default.contents(atPath: Path.join(root, path)) }
    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: Path.join(root, path)) }
    func list(_ path: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: Path.join(root, path))) ?? []).sorted() }

    func mode(_ path: String) -> UInt16? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: Path.join(root, path)),
              let mode = attributes[.posixPermissions] as? Int else { return nil }
        return UInt16(mode & 0o7777)
    }

    func blocks(_ path: String) -> [PEMBlock] { data(path).flatMap { try? PEMBlock.all(in: $0) } ?? [] }

    func certificates(_ path: String) -> [Certificate] {
        blocks(path).filter { $0.label == "CERTIFICATE" }.compactMap { try? Certificate(der: $0.der) }
    }

    func key(_ path: String) -> PrivateKey? { data(path).flatMap { try? PrivateKey(pem: $0) } }

    /// CA certificates the tree carries besides the root, through which leaves may chain.
    var intermediates: [Certificate] {
        (list("home/minio-user/.minio/certs/CAs").filter { $0.hasPrefix("intermediate-ca") }.map { "home/minio-user/.minio/certs/CAs/\($0)" }
            + ["etc/etcd/pki/ca.pem"]).flatMap { certificates($0) }.filter(\.isCA)
    }
}
