import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import Foundation

/// The checks descriptors run on one host tree (laid out on the controller, or installed on the
/// host), collecting one line per violation: `<tree>/<path>: <why>`.
public struct BundleChecks {
    public let files: TreeFiles
    /// The host's FQDN, from its manifest.
    public let host: String
    /// The roots of the tree's trust anchors: every chain must end at one of them.
    public let roots: [Certificate]
    public let now: Date
    /// True when the tree is this machine's own `/`: activated trust is checked too.
    public let atSystemRoot: Bool
    let manifestFiles: Set<String>
    private let owners: [String: String]
    public private(set) var violations: [String] = []
    /// Files reported as too large to read (`report` names each once).
    private var oversized: Set<String> = []

    init(files: TreeFiles, manifest: BundleManifest, now: Date, atSystemRoot: Bool) {
        self.files = files
        self.host = manifest.host
        self.roots = TrustBundle.roots(files)
        self.now = now
        self.atSystemRoot = atSystemRoot
        self.manifestFiles = Set(manifest.files.map(\.path))
        self.owners = Dictionary(manifest.files.map { ($0.path, $0.owner) }, uniquingKeysWith: { first, _ in first })
    }

    public mutating func report(_ path: String, _ message: String) {
        report(path, line: nil, message)
    }

    /// `<tree>/<path>:<line>: <why>` for a finding at a line of a snippet.
    public mutating func report(_ path: String, line: Int?, _ message: String) {
        // A file too large to read is one violation, whatever each check would say about the
        // content it could not read.
        if let size = files.oversized(path) {
            guard oversized.insert(path).inserted else { return }
            violations.append("\(files.display(path)): not read: \(ReadLimits.tooLarge(size: size, limit: TreeFiles.limit))")
            return
        }
        violations.append("\(files.display(path))\(line.map { $0 > 0 ? ":\($0)" : "" } ?? ""): \(message)")
    }

    /// The rules of `snippet` on each of its paths present in the tree, one violation per finding.
    mutating func snippet(_ snippet: Snippet) {
        for path in snippet.paths where files.exists(path) {
            guard let text = files.text(path) else {
                report(path, "not a readable regular file, so what \(snippet.template) allows cannot be checked")
                continue
            }
            for finding in snippet.rules(text) { report(path, line: finding.line, finding.rule) }
        }
    }

    /// OpenSearch's plugin loads only unencrypted PKCS#8, and never Ed25519.
    public mutating func pkcs8Key(_ path: String, service: String) -> PrivateKey? {
        let labels = files.blocks(path).map(\.label)
        guard let label = labels.first(where: { $0.contains("PRIVATE KEY") }) else {
            report(path, files.exists(path) ? "no private key" : "missing")
            return nil
        }
        if label != "PRIVATE KEY" {
            let format = label == "RSA PRIVATE KEY" ? "PKCS#1" : label == "EC PRIVATE KEY" ? "SEC1" : "encrypted"
            report(path, "is \(label) (\(format)); \(service) needs unencrypted PKCS#8 'BEGIN PRIVATE KEY'")
        }
        let key = files.key(path)
        if key?.keyType == .ed25519 { report(path, "is Ed25519, which \(service) cannot load") }
        return key
    }

    /// PostgreSQL (and libpq for client keys) refuses a key readable by group or other, unless it
    /// is root-owned and 0640.
    public mutating func postgresKey(_ path: String) {
        guard let mode = files.mode(path) else { return }
        let owner = owners[path] ?? "?"
        if !(mode & 0o077 == 0 || (owner == "root" && mode == 0o640)) {
            report(path, "mode \(ModeText.format(mode)) owned by \(owner): PostgreSQL refuses it (0600 postgres, or 0640 root)")
        }
    }

    /// The first certificate of `path`: its key, names, validity, and a chain to the tree's roots
    /// through the certificates after it in the file (and `untrusted`).
    public mutating func leaf(_ path: String, key: PrivateKey?, names: [String], untrusted: [Certificate] = []) {
        let chain = files.certificates(path)
        guard let leaf = chain.first else {
            report(path, files.exists(path) ? "holds no certificate" : "missing")
            return
        }
        if let key, !key.matches(leaf) { report(path, "the certificate does not match its private key") }
        if leaf.notAfter <= now { report(path, "expired \(RFC3339.format(leaf.notAfter))") }
        if leaf.notBefore > now { report(path, "not valid before \(RFC3339.format(leaf.notBefore))") }
        let sans = leaf.subjectAlternativeNames
        for name in names where !sans.contains(where: { Self.covers($0, name) }) {
            report(path, "no SAN for \(name)")
        }
        if !roots.isEmpty, !Self.chains(chain + untrusted, to: roots) {
            report(path, "not issued by the bundle's root CA")
        }
    }

    /// `path` holds certificates with every one of `usages` (extendedKeyUsage short names).
    public mutating func extendedKeyUsage(_ path: String, _ usages: Set<String>, why: String) {
        guard let leaf = files.certificates(path).first else { return }
        if !Set(leaf.extendedKeyUsageNames).isSuperset(of: usages) {
            report(path, "EKU is \(leaf.extendedKeyUsageNames.joined(separator: "+")); \(why)")
        }
    }

    /// A trust file: roots only, each one of the tree's roots (intermediates travel in the chains,
    /// so a new intermediate changes no trust file).
    public mutating func rootsOnly(_ path: String) {
        guard files.exists(path) else { return }
        let certificates = files.certificates(path)
        if certificates.isEmpty { report(path, "holds no certificate") }
        let rootDER = Set(roots.compactMap { try? $0.derEncoded() })
        for certificate in certificates where !(certificate.isSelfSigned && (try? certificate.derEncoded()).map(rootDER.contains) == true) {
            report(path, "holds '\(certificate.subject.commonName ?? certificate.subjectRFC2253)', which is not one of the bundle's roots (trust files hold roots only)")
        }
    }

    static func covers(_ san: GeneralName, _ name: String) -> Bool {
        switch san {
        case let .dns(dns): return dns.lowercased() == name.lowercased()
        case let .ip(bytes): return IPAddress(name).map { $0.bytes == bytes } ?? false
        default: return false
        }
    }

    /// The leaf chains to one of `roots` through the other certificates.
    static func chains(_ chain: [Certificate], to roots: [Certificate]) -> Bool {
        var current = chain[0]
        var rest = Array(chain.dropFirst())
        while true {
            if roots.contains(where: { current.isSigned(by: $0) }) { return true }
            guard let index = rest.firstIndex(where: { current.isSigned(by: $0) }) else { return false }
            current = rest.remove(at: index)
        }
    }
}

/// Read access to one host tree, tolerant of anything missing or malformed (the checks report it).
/// Never follows a symlink at the last component: an installed tree is checked as it is.
public struct TreeFiles {
    public let root: String
    /// How paths are shown: `<host-dir>/etc/...` for a bundle output, `/etc/...` for `/`.
    let label: String

    package init(root: String, label: String) {
        self.root = root
        self.label = label
    }

    package func display(_ path: String) -> String { label.hasSuffix("/") ? label + path : label + "/" + path }
    func full(_ path: String) -> String { Path.join(root, path) }

    public func status(_ path: String) -> FileStatus? { (try? FileStatus.of(full(path), followLinks: false)) ?? nil }
    public func exists(_ path: String) -> Bool { status(path) != nil }
    public func mode(_ path: String) -> UInt16? { status(path)?.mode }

    /// The most read of one file of a tree (a key, a certificate, a snippet, the manifest).
    static let limit = ReadLimits.bundleFile

    /// The file's bytes; nil when it is missing, not a regular file, or larger than `limit`.
    public func data(_ path: String) -> Data? {
        guard status(path)?.kind == .regular, case let .success((data, _)) = RegularFile.read(full(path), limit: Self.limit) else { return nil }
        return data
    }

    /// The size of a regular file larger than `limit` (never read), or nil.
    public func oversized(_ path: String) -> Int? {
        guard let status = status(path), status.kind == .regular, status.size > Self.limit else { return nil }
        return status.size
    }

    public func text(_ path: String) -> String? { data(path).map { String(decoding: $0, as: UTF8.self) } }

    public func list(_ path: String) -> [String] {
        guard status(path)?.kind == .directory else { return [] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: full(path))) ?? []).sorted()
    }

    public func blocks(_ path: String) -> [PEMBlock] { data(path).flatMap { try? PEMBlock.all(in: $0) } ?? [] }

    public func certificates(_ path: String) -> [Certificate] {
        blocks(path).filter { $0.label == "CERTIFICATE" || $0.label == "TRUSTED CERTIFICATE" }.compactMap { try? Certificate(der: $0.der) }
    }

    public func key(_ path: String) -> PrivateKey? { data(path).flatMap { try? PrivateKey(pem: $0) } }
}
