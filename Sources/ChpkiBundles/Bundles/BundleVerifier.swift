import ChpkiBase
import ChpkiPlatform
import Foundation

/// `chpki verify --bundle`: checks host trees against their `var/lib/chpki/MANIFEST.json` and what
/// each service accepts (the descriptors' checks), one violation per line. `installed` checks a
/// host's own installed root: owners by name against this host's users and groups, and (on `/`)
/// the activated system trust bundle.
public struct BundleVerifier {
    public struct Result {
        public var violations: [String] = []
        /// Not violations: a service user missing on the host (its files left root-owned).
        public var warnings: [String] = []
    }

    public let now: Date
    public let installed: Bool
    /// The root whose activated trust bundle is checked (`/`; another directory in tests).
    let systemRoot: String

    public init(now: Date, installed: Bool = false) {
        self.init(now: now, installed: installed, systemRoot: "/")
    }

    init(now: Date, installed: Bool, systemRoot: String) {
        self.now = now
        self.installed = installed
        self.systemRoot = systemRoot
    }

    /// Every host tree under `directory` (or `directory` itself when it holds a manifest).
    public static func hostTrees(in directory: String) throws -> [String] {
        if hasManifest(directory) { return [directory] }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw ChpkiError.input(.fileMissing, file: directory, field: "--bundle", "no such directory")
        }
        let trees = entries.sorted().filter { !$0.hasPrefix(".") }.map { Path.join(directory, $0) }.filter(hasManifest)
        guard !trees.isEmpty else {
            let old = FileManager.default.fileExists(atPath: Path.join(directory, "MANIFEST.json"))
                || entries.contains { FileManager.default.fileExists(atPath: Path.join(directory, $0, "MANIFEST.json")) }
            throw ChpkiError.input(old ? .bundleOldLayout : .bundleNotABundle, file: directory, field: "--bundle", old
                ? "laid out by an older chpki (MANIFEST.json at the tree's root): run 'chpki bundle' again"
                : "no host tree with a \(BundleManifest.path)")
        }
        return trees
    }

    static func hasManifest(_ tree: String) -> Bool { FileManager.default.fileExists(atPath: Path.join(tree, BundleManifest.path)) }

    public func verify(tree: String) -> Result {
        let resolved = { (path: String) in URL(fileURLWithPath: path).resolvingSymlinksInPath().path }
        let atSystemRoot = installed && resolved(tree) == resolved(systemRoot)
        let label = installed ? (resolved(tree) == "/" ? "" : tree) : Path.name(of: tree)
        let files = TreeFiles(root: tree, label: label.isEmpty ? "/" : label)
        let manifest: BundleManifest
        do {
            if let size = files.oversized(BundleManifest.path) {
                return Result(violations: ["\(files.display(BundleManifest.path)): not read: \(ReadLimits.tooLarge(size: size, limit: TreeFiles.limit))"])
            }
            guard let data = files.data(BundleManifest.path) else {
                return Result(violations: ["\(files.display(BundleManifest.path)): missing or not a regular file"])
            }
            manifest = try BundleManifest.decode(data, label: files.display(BundleManifest.path))
        } catch {
            return Result(violations: ["\(error)"])
        }
        var checks = BundleChecks(files: files, manifest: manifest, now: now, atSystemRoot: atSystemRoot)
        var result = Result()
        checkManifest(manifest, &checks, warnings: &result.warnings)
        ServiceBundles.trust.check(&checks)
        for service in manifest.services where BundleManifest.isSafe(service) && !service.contains("/") {
            let layout = ServiceBundles.layout(of: service)
            layout.check(&checks, service: service)
            for snippet in layout.snippets { checks.snippet(snippet) }
        }
        result.violations = checks.violations
        return result
    }

    /// Every directory and file of the manifest: there, of the right kind, mode and content, and
    /// (installed) owned by the users and groups it names.
    func checkManifest(_ manifest: BundleManifest, _ checks: inout BundleChecks, warnings: inout [String]) {
        var missingUsers: [String: (service: String, count: Int)] = [:]
        func checkOwner(_ path: String, _ status: FileStatus, owner: String, group: String, mode: UInt16, service: String) {
            guard installed else { return }
            if let uid = Accounts.userID(owner) {
                if status.uid != uid { checks.report(path, "owned by \(status.owner), MANIFEST.json says \(owner)") }
            } else if status.uid == 0 {
                // tar falls back to the header's uid 0: the file stays root's, readable by no one else.
                missingUsers[owner, default: (service, 0)].count += 1
                if mode & 0o004 != 0 && status.kind == .regular && path.hasSuffix("key") {
                    checks.report(path, "a key readable by everyone")
                }
            } else {
                checks.report(path, "owned by \(status.owner); user \(owner) (MANIFEST.json) does not exist on this host")
            }
            if let gid = Accounts.groupID(group) {
                if status.gid != gid && !(Accounts.userID(owner) == nil && status.gid == 0) {
                    checks.report(path, "group is \(status.group), MANIFEST.json says \(group)")
                }
            } else if status.gid != 0 {
                checks.report(path, "group is \(status.group); group \(group) (MANIFEST.json) does not exist on this host")
            }
        }
        for entry in manifest.directories {
            guard let status = checks.files.status(entry.path) else {
                checks.report(entry.path, "directory listed in MANIFEST.json but missing")
                continue
            }
            guard status.kind == .directory else {
                checks.report(entry.path, "MANIFEST.json lists a directory, this is \(status.kind == .symlink ? "a symlink" : "not a directory")")
                continue
            }
            let mode = ModeText.parse(entry.mode) ?? 0
            if status.mode != mode { checks.report(entry.path, "mode is \(ModeText.format(status.mode)), MANIFEST.json says \(entry.mode)") }
            checkOwner(entry.path, status, owner: entry.owner, group: entry.group, mode: mode, service: entry.service)
        }
        for entry in manifest.files {
            guard let status = checks.files.status(entry.path) else {
                checks.report(entry.path, "listed in MANIFEST.json but missing")
                continue
            }
            guard status.kind == .regular else {
                checks.report(entry.path, "MANIFEST.json lists a file, this is \(status.kind == .symlink ? "a symlink" : "not a regular file")")
                continue
            }
            let digest = checks.files.data(entry.path).flatMap { try? BundleManifest.sha256($0) }
            if digest != entry.sha256.lowercased() { checks.report(entry.path, "content differs from MANIFEST.json (sha256)") }
            let mode = ModeText.parse(entry.mode) ?? 0
            if status.mode != mode { checks.report(entry.path, "mode is \(ModeText.format(status.mode)), MANIFEST.json says \(entry.mode)") }
            checkOwner(entry.path, status, owner: entry.owner, group: entry.group, mode: mode, service: entry.service)
        }
        for (user, use) in missingUsers.sorted(by: { $0.key < $1.key }) {
            warnings.append("\(checks.files.display(BundleManifest.path)): user '\(user)' of service \(use.service) does not exist on this host: \(use.count) of its files and directories are left root-owned (create the user, then install again)")
        }
    }
}
