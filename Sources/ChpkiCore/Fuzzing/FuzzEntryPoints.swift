import Foundation

/// What the libFuzzer targets in `Fuzz/` call: each entry point feeds untrusted bytes to exactly
/// the reader a command uses and swallows what it throws. A thrown error is a correct refusal;
/// only a trap, a crash or a sanitizer report is a finding (SPEC §8: no input makes chpki crash).
/// Public so the sanitized fuzz build needs no `@testable import`; nothing in chpki calls these.
public enum FuzzEntry {
    /// `install-frontend FILE` and `install-backend FILE` up to the installer: gzip magic or CMS
    /// envelope, gunzip, tar, `MANIFEST.json`, each member against it and the layout, then the
    /// validation of the files. An envelope is refused at the passphrase: its KDF cost is the
    /// file's to choose, which makes a slow input, not a crash, and OpenSSL's CMS parser is not
    /// ours to fuzz.
    public static func frontendBundle(_ data: Data) {
        let noPassphrase = { () throws -> Passphrase in throw ChpkiError(.passphraseMissing, "fuzz: no passphrase") }
        _ = try? FrontendBundleReader.open(data, file: "fuzz.tar.gz", passphrase: noPassphrase)
        _ = try? BackendSecretsBundle.open(data, file: "fuzz.tar.gz", passphrase: noPassphrase)
    }

    /// The same readers with the fuzzed bytes as the tar inside the gzip, so that mutations reach
    /// the header fields, the manifest and the member checks instead of dying in inflate.
    public static func tar(_ data: Data) {
        guard let archive = try? Gzip.compress(data, level: 1) else { return }
        frontendBundle(archive)
    }

    /// `--inventory FILE`: the YAML text as `Inventory.load` reads it.
    public static func inventory(_ data: Data) {
        _ = try? Inventory.parse(yaml: String(decoding: data, as: UTF8.self), path: "fuzz.yml")
    }

    /// `inspect FILE` without a passphrase: PEM blocks (or one DER certificate), each parsed, then
    /// the JSON report and the human summary written to nowhere.
    public static func inspect(_ data: Data) {
        guard let items = try? InspectCommand.items(in: data, file: "fuzz.pem", passphrase: { nil }) else { return }
        let discard: (String) -> Void = { _ in }
        try? Reporter(json: true, quiet: false, verbose: false, standardOutput: discard, standardError: discard)
            .emit(InspectCommand.Report(file: "fuzz.pem", items: items))
        let human = Reporter(json: false, quiet: false, verbose: false, standardOutput: discard, standardError: discard)
        for item in items { InspectCommand.describe(item, reporter: human) }
    }

    /// The frontend's `private-*-secrets.json` (veil v2, veil in clear, legacy flat).
    public static func veil(_ data: Data) {
        _ = try? VeilSecrets.parse(data)
    }

    /// A template override (`--templates DIR`, `CHPKI_TEMPLATES`, `/etc/chpki/templates`): the bytes
    /// as the file `pg_hba.conf.mustache` of an override directory, read, decoded and parsed by
    /// `Templates` as chpki reads any override, then rendered with `templateContext`.
    public static func templateOverride(_ data: Data) {
        scratchLock.lock()
        defer { scratchLock.unlock() }
        let file = URL(fileURLWithPath: Path.join(scratch.templates, "pg_hba.conf" + Templates.fileSuffix))
        guard (try? data.write(to: file)) != nil,
              let templates = try? Templates(explicit: scratch.templates, environment: [:], systemDirectory: scratch.absent)
        else { return }
        _ = try? templates.render("pg_hba.conf", templateContext)
    }

    /// Every key the bundle descriptors pass to a snippet (Bundles/Services), each of its kind:
    /// strings, a Bool, and HAProxy's list of binds with a nested list, so sections, inverted
    /// sections and loops of a fuzzed template all have something to walk. (Computed: `Any` is
    /// not Sendable, so it cannot be a static let.)
    static var templateContext: [String: Any] { [
        "host": "backend-1.example.com", "ip": "10.0.0.1", "ip_is_loopback": false,
        "initial_cluster": "backend-1.example.com=https://10.0.0.1:2380,backend-2.example.com=https://10.0.0.2:2380",
        "etcd_hosts": "10.0.0.1:2379,10.0.0.2:2379", "replication_user": "patroni",
        "ident_lines": "chpki      patroni@backend-1.example.com  patroni\n",
        "nodes_dn": "  - \"CN=backend-1.example.com,OU=Nodes,O=Example\"\n", "admin_dn": "  - \"CN=admin,O=Example\"\n",
        "volumes": "https://backend-1.example.com:9900/data/minio https://backend-2.example.com:9900/data/minio",
        "directory": "/etc/cinc-project", "config": "/etc/cinc-project/cinc-server",
        "binds": [["ip": "10.0.0.10", "names": "api, web", "fqdns": ["api.example.com", "web.example.com"]],
                  ["ip": "fd00::10", "names": "", "fqdns": [String]()]] as [[String: Any]],
    ] }

    /// The `state` fuzz target: the reader of recorded rollout state (`chpki rollout-plan`'s
    /// `InstallRecord`, then the diff), and the MANIFEST.json reader of `verify --bundle`, since a
    /// record is a copy of a manifest.
    public static func state(_ data: Data) {
        fuzzInstallRecord(data)
        manifest(data)
    }

    /// `verify --bundle`'s reader of a host tree's `var/lib/chpki/MANIFEST.json`: the bytes are
    /// decoded as `BundleManifest.decode` does, and a manifest it accepts is then checked by
    /// `BundleVerifier` against a tree holding nothing but itself, so every entry is looked up
    /// (missing, wrong kind, digest, mode) and every service's checks run.
    public static func manifest(_ data: Data) {
        guard (try? BundleManifest.decode(data, label: "fuzz/MANIFEST.json")) != nil else { return }
        scratchLock.lock()
        defer { scratchLock.unlock() }
        let file = URL(fileURLWithPath: Path.join(scratch.tree, BundleManifest.path))
        guard (try? data.write(to: file)) != nil else { return }
        _ = BundleVerifier(now: Date(timeIntervalSince1970: 1_800_000_000)).verify(tree: scratch.tree)
    }

    /// Directories of this fuzzing process (0700, under the temporary directory, removed at exit),
    /// made once: the override directory, a host tree, and a path that does not exist.
    private static let scratch: (templates: String, tree: String, absent: String) = {
        let paths = (templates: Path.join(scratchBase, "templates"), tree: Path.join(scratchBase, "tree"),
                     absent: Path.join(scratchBase, "absent"))
        for directory in [paths.templates, Path.join(paths.tree, BundleManifest.directory)] {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
        }
        atexit { try? FileManager.default.removeItem(atPath: FuzzEntry.scratchBase) }
        return paths
    }()
    /// The scratch files are one per process; the regression tests replay inputs in parallel.
    private static let scratchLock = NSLock()
    private static let scratchBase = Path.join(FileManager.default.temporaryDirectory.path, "chpki-fuzz-\(UUID().uuidString)")
}
