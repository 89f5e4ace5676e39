import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChpkiCore
@testable import ChpkiSecretBundles
@testable import ChpkiCA
@testable import ChpkiPlatform

/// SecretBundleInstaller's plans and installs under a private root: which step each file gets
/// (mkdir, create, unchanged, set-mode, replace with a kept backup), every conflict (a differing
/// file without --force, symlinks, non-directories, directories others can write), the rule that a
/// refused install writes nothing, and the journal's recovery of an install killed at each point.
@Suite("Secret bundle installer")
struct SecretBundleInstallerTests {
    typealias S = CATestSupport

    static let layout = SecretBundleLayout(
        name: "unit test bundle", format: "chpki-unit-test-bundle",
        files: [SecretBundleLayout.File(path: "etc/app/secret.json", mode: 0o600),
                SecretBundleLayout.File(path: "etc/app/public.pem", mode: 0o644),
                SecretBundleLayout.File(path: "var/opt/app/bootstrapped", mode: 0o600)],
        directories: [SecretBundleLayout.Directory(path: "etc/app", mode: 0o700),
                      SecretBundleLayout.Directory(path: "var/opt/app", mode: 0o755)],
        serviceAccount: "svc")

    static let files: [String: Data] = [
        "etc/app/secret.json": Data(#"{"password": "s3cret"}"#.utf8),
        "etc/app/public.pem": Data("-----BEGIN CERTIFICATE-----\n...\n".utf8),
        "var/opt/app/bootstrapped": Data("yes\n".utf8),
    ]

    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func root() throws -> String { try S.temporaryDirectory("install") }

    static func plan(_ root: String, files: [String: Data] = files, force: Bool = false) throws -> SecretBundleInstaller.Plan {
        try SecretBundleInstaller.plan(files, layout: layout, root: try RootedDirectory(root, trustedOwners: SecretBundleInstaller.trustedOwners),
                                       force: force, now: now)
    }

    @discardableResult
    static func install(_ root: String, files: [String: Data] = files, force: Bool = false, dryRun: Bool = false) throws -> SecretBundleInstaller.Plan {
        try SecretBundleInstaller.install(files, layout: layout, rootPath: root, force: force, dryRun: dryRun, now: now)
    }

    /// Every entry under `root` (relative path -> content, nil for a directory), symlinks as "-> target".
    static func tree(_ root: String) -> [String: String] {
        var result: [String: String] = [:]
        let enumerator = FileManager.default.enumerator(atPath: root)
        while let name = enumerator?.nextObject() as? String {
            let path = root + "/" + name
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                result[name] = "-> " + target
            } else if let data = RegularFile.contents(path, limit: 1 << 20) {
                result[name] = String(decoding: data, as: UTF8.self) + " @\(String(S.mode(path) ?? 0, radix: 8))"
            } else {
                result[name] = "dir @\(String(S.mode(path) ?? 0, radix: 8))"
            }
        }
        return result
    }

    static func put(_ root: String, _ relative: String, _ data: Data, mode: Int = 0o600) throws {
        let path = root + "/" + relative
        try FileManager.default.createDirectory(atPath: Path.parent(of: path), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        try data.write(to: URL(fileURLWithPath: path))
        chmod(path, mode_t(mode))
    }

    static func actions(_ plan: SecretBundleInstaller.Plan) -> [String: SecretBundleInstaller.Action] {
        Dictionary(uniqueKeysWithValues: plan.steps.map { ($0.relative, $0.action) })
    }

    // MARK: - plans on an empty root

    @Test("on an empty root: every directory on the way, shallowest first, then each file in the table's order")
    func emptyRootPlan() throws {
        let root = try Self.root()
        let plan = try Self.plan(root)
        #expect(plan.conflicts.isEmpty)
        let mkdirs = plan.steps.filter { $0.action == .mkdir }
        #expect(Set(mkdirs.map(\.relative)) == ["etc", "etc/app", "var", "var/opt", "var/opt/app"])
        for (index, step) in mkdirs.enumerated() where step.relative.contains("/") {
            #expect(mkdirs[..<index].contains { $0.relative == Path.parent(of: step.relative) }, "\(step.relative) before its parent")
        }
        let creates = plan.steps.filter { $0.action == .create }
        #expect(creates.map(\.relative) == Self.layout.files.map(\.path))
        let lastMkdir = plan.steps.lastIndex { $0.action == .mkdir }!
        let firstCreate = plan.steps.firstIndex { $0.action == .create }!
        #expect(lastMkdir < firstCreate)
        #expect(plan.steps.allSatisfy { $0.path == root + "/" + $0.relative })
    }

    @Test("modes come from the table: listed directories as listed, other ancestors 0755; files as listed")
    func planModes() throws {
        let plan = try Self.plan(try Self.root())
        let modes = Dictionary(uniqueKeysWithValues: plan.steps.map { ($0.relative, $0.mode) })
        #expect(modes["etc"] == "0755")
        #expect(modes["etc/app"] == "0700")
        #expect(modes["var/opt/app"] == "0755")
        #expect(modes["etc/app/secret.json"] == "0600")
        #expect(modes["etc/app/public.pem"] == "0644")
        #expect(plan.steps.allSatisfy { $0.owner == "root" && $0.group == "root" })
    }

    @Test("running as root: owners are set to root and no ownership note is given")
    func rootOwnership() throws {
        guard Accounts.isRoot else { return }
        let plan = try Self.plan(try Self.root())
        #expect(plan.ownershipNote == nil)
        #expect(plan.ids.0 == 0 && plan.ids.1 == 0)
    }

    @Test("only the files given are planned (a bundle may leave optional ones out)")
    func subsetOfFiles() throws {
        let plan = try Self.plan(try Self.root(), files: ["var/opt/app/bootstrapped": Data("yes\n".utf8)])
        #expect(plan.steps.filter { $0.action == .create }.map(\.relative) == ["var/opt/app/bootstrapped"])
        #expect(!plan.steps.contains { $0.relative.hasPrefix("etc") })
    }

    // MARK: - plans against existing files

    @Test("an identical file with the table's mode is unchanged")
    func identicalUnchanged() throws {
        let root = try Self.root()
        try Self.install(root)
        let plan = try Self.plan(root)
        #expect(plan.conflicts.isEmpty)
        #expect(plan.steps.allSatisfy { $0.action == .unchanged })
        #expect(plan.steps.count == 3)
    }

    @Test("an identical file with another mode gets set-mode")
    func identicalOtherMode() throws {
        let root = try Self.root()
        try Self.install(root)
        chmod(root + "/etc/app/secret.json", 0o640)
        let actions = Self.actions(try Self.plan(root))
        #expect(actions["etc/app/secret.json"] == .metadata)
        #expect(actions["etc/app/public.pem"] == .unchanged)
    }

    @Test("an identical file owned by someone else gets set-mode when running as root")
    func identicalOtherOwner() throws {
        guard Accounts.isRoot else { return }
        let root = try Self.root()
        try Self.install(root)
        chown(root + "/etc/app/public.pem", 1000, 1000)
        #expect(Self.actions(try Self.plan(root))["etc/app/public.pem"] == .metadata)
    }

    @Test("a differing file without --force is a conflict naming it, and gets no step")
    func differingConflict() throws {
        let root = try Self.root()
        try Self.put(root, "etc/app/secret.json", Data("operator's own".utf8))
        chmod(root + "/etc/app", 0o700)
        chmod(root + "/etc", 0o755)
        let plan = try Self.plan(root)
        #expect(plan.conflicts.count == 1)
        #expect(plan.conflicts.first?.hasPrefix(root + "/etc/app/secret.json: ") == true)
        #expect(!plan.steps.contains { $0.relative == "etc/app/secret.json" })
    }

    @Test("with --force a differing file is replaced and its old copy named with the backup suffix")
    func forceReplace() throws {
        let root = try Self.root()
        try Self.put(root, "etc/app/secret.json", Data("operator's own".utf8))
        let plan = try Self.plan(root, force: true)
        let step = try #require(plan.steps.first { $0.relative == "etc/app/secret.json" })
        #expect(step.action == .replace)
        #expect(step.backup == root + "/etc/app/secret.json" + SecretBundleInstaller.backupSuffix(Self.now))
    }

    @Test("a backup name already taken gets -2, then -3")
    func backupNameFree() throws {
        let root = try Self.root()
        let suffix = SecretBundleInstaller.backupSuffix(Self.now)
        try Self.put(root, "etc/app/secret.json", Data("operator's own".utf8))
        try Self.put(root, "etc/app/secret.json" + suffix, Data("older backup".utf8))
        try Self.put(root, "etc/app/secret.json" + suffix + "-2", Data("older backup 2".utf8))
        let step = try #require(try Self.plan(root, force: true).steps.first { $0.relative == "etc/app/secret.json" })
        #expect(step.backup == root + "/etc/app/secret.json" + suffix + "-3")
    }

    @Test("the backup suffix is the UTC time to the second")
    func backupSuffix() {
        #expect(SecretBundleInstaller.backupSuffix(Date(timeIntervalSince1970: 0)) == ".chpki-backup-19700101T000000Z")
        #expect(SecretBundleInstaller.backupSuffix(Self.now) == ".chpki-backup-20270115T080000Z")
    }

    // MARK: - conflicts on the way

    @Test("a symlink where a directory should be is one conflict; the files below it are not planned")
    func symlinkDirectory() throws {
        let root = try Self.root()
        let elsewhere = try S.temporaryDirectory("install-elsewhere")
        try FileManager.default.createSymbolicLink(atPath: root + "/etc", withDestinationPath: elsewhere)
        let plan = try Self.plan(root)
        #expect(plan.conflicts.count == 1)
        #expect(plan.conflicts.first?.hasPrefix(root + "/etc: ") == true)
        #expect(!plan.steps.contains { $0.relative.hasPrefix("etc") })
        #expect(plan.steps.contains { $0.relative == "var/opt/app/bootstrapped" })
    }

    @Test("a symlink, a directory or a FIFO where a file should be is a conflict")
    func nonRegularAtFile() throws {
        let root = try Self.root()
        try Self.install(root)
        try FileManager.default.removeItem(atPath: root + "/etc/app/secret.json")
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/app/secret.json", withDestinationPath: "/etc/passwd")
        try FileManager.default.removeItem(atPath: root + "/etc/app/public.pem")
        try FileManager.default.createDirectory(atPath: root + "/etc/app/public.pem", withIntermediateDirectories: false)
        try FileManager.default.removeItem(atPath: root + "/var/opt/app/bootstrapped")
        #expect(mkfifo(root + "/var/opt/app/bootstrapped", 0o600) == 0)
        let plan = try Self.plan(root, force: true)
        #expect(plan.conflicts.count == 3, "\(plan.conflicts)")
        #expect(plan.steps.allSatisfy { $0.action == .mkdir })
    }

    @Test("a regular file where a directory should be is a conflict")
    func fileAsDirectory() throws {
        let root = try Self.root()
        try S.write("not a directory", to: root + "/var")
        let plan = try Self.plan(root)
        #expect(plan.conflicts.count == 1)
        #expect(plan.conflicts.first?.hasPrefix(root + "/var: ") == true)
        #expect(!plan.steps.contains { $0.relative.hasPrefix("var") })
    }

    @Test("a directory group or others can write is a conflict", arguments: [0o775, 0o757, 0o1777])
    func writableDirectory(mode: Int) throws {
        let root = try Self.root()
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: false)
        chmod(root + "/etc", mode_t(mode))
        let plan = try Self.plan(root)
        #expect(plan.conflicts.count == 1)
        #expect(plan.conflicts.first?.hasPrefix(root + "/etc: ") == true)
    }

    @Test("a directory owned by another user is a conflict")
    func foreignDirectory() throws {
        guard Accounts.isRoot else { return }
        let root = try Self.root()
        try FileManager.default.createDirectory(atPath: root + "/var", withIntermediateDirectories: false)
        chown(root + "/var", 1000, 1000)
        let plan = try Self.plan(root)
        #expect(plan.conflicts.count == 1)
        #expect(plan.conflicts.first?.hasPrefix(root + "/var: ") == true)
    }

    // MARK: - installs

    @Test("install writes every file with the table's mode, owned by root, and leaves no temporary or journal")
    func installWrites() throws {
        let root = try Self.root()
        let plan = try Self.install(root)
        #expect(plan.steps.filter { $0.action == .create }.count == 3)
        for (path, data) in Self.files {
            #expect(S.read(root + "/" + path) == data)
            #expect(S.mode(root + "/" + path) == Int(Self.layout.file(at: path)!.mode))
            if Accounts.isRoot {
                #expect(try FileStatus.of(root + "/" + path)?.uid == 0)
            }
        }
        #expect(S.mode(root + "/etc/app") == 0o700)
        #expect(S.mode(root + "/etc") == 0o755)
        let hidden = Self.tree(root).keys.filter { Path.name(of: $0).hasPrefix(".") }
        #expect(hidden.isEmpty, "\(hidden)")
    }

    @Test("a second install of the same bundle changes nothing (same inodes)")
    func installIdempotent() throws {
        let root = try Self.root()
        try Self.install(root)
        let inode = try FileManager.default.attributesOfItem(atPath: root + "/etc/app/secret.json")[.systemFileNumber] as? UInt64
        let plan = try Self.install(root)
        #expect(plan.steps.allSatisfy { $0.action == .unchanged })
        #expect(try FileManager.default.attributesOfItem(atPath: root + "/etc/app/secret.json")[.systemFileNumber] as? UInt64 == inode)
    }

    @Test("a refused install writes nothing at all, not even the directories")
    func refusedWritesNothing() throws {
        let root = try Self.root()
        try Self.put(root, "var/opt/app/bootstrapped", Data("no\n".utf8))
        let before = Self.tree(root)
        let error = S.refusal { try Self.install(root) }
        #expect(error?.kind == .refused)
        #expect(Self.tree(root) == before)
    }

    @Test("a dry run plans the same steps and writes nothing")
    func dryRun() throws {
        let root = try Self.root()
        let dry = try Self.install(root, dryRun: true)
        #expect(Self.tree(root).isEmpty)
        let real = try Self.install(root)
        #expect(dry.steps.map(\.relative) == real.steps.map(\.relative))
        #expect(dry.steps.map(\.action) == real.steps.map(\.action))
    }

    @Test("install --force replaces the file and keeps the old one under the backup name")
    func installForce() throws {
        let root = try Self.root()
        try Self.install(root)
        try Self.put(root, "etc/app/secret.json", Data("edited by hand".utf8), mode: 0o600)
        var changed = Self.files
        changed["etc/app/public.pem"] = Data("a new certificate".utf8)
        let plan = try Self.install(root, files: changed, force: true)
        #expect(Self.actions(plan)["etc/app/secret.json"] == .replace)
        #expect(Self.actions(plan)["etc/app/public.pem"] == .replace)
        #expect(S.read(root + "/etc/app/secret.json") == Self.files["etc/app/secret.json"])
        let suffix = SecretBundleInstaller.backupSuffix(Self.now)
        #expect(S.read(root + "/etc/app/secret.json" + suffix) == Data("edited by hand".utf8))
        #expect(S.read(root + "/etc/app/public.pem" + suffix) == Self.files["etc/app/public.pem"])
        #expect(S.read(root + "/etc/app/public.pem") == Data("a new certificate".utf8))
    }

    @Test("set-mode writes a new file: another hard link to the old one keeps its mode")
    func setModeDoesNotReachHardLinks() throws {
        let root = try Self.root()
        try Self.install(root)
        chmod(root + "/etc/app/public.pem", 0o600)
        #expect(link(root + "/etc/app/public.pem", root + "/var/opt/app/planted") == 0)
        let plan = try Self.install(root)
        #expect(Self.actions(plan)["etc/app/public.pem"] == .metadata)
        #expect(S.mode(root + "/etc/app/public.pem") == 0o644)
        #expect(S.mode(root + "/var/opt/app/planted") == 0o600)
    }

    @Test("the root must exist and be a directory, named with --root")
    func badRoot() throws {
        let parent = try Self.root()
        #expect(S.refusal { try Self.install(parent + "/absent") }?.field == "--root")
        try S.write("file", to: parent + "/file")
        #expect(S.refusal { try Self.install(parent + "/file") }?.field == "--root")
    }

    @Test("a root others can write is refused, nothing written")
    func untrustedRoot() throws {
        let root = try Self.root()
        chmod(root, 0o777)
        #expect(S.refusal { try Self.install(root) }?.kind == .refused)
        #expect(Self.tree(root).isEmpty)
    }

    @Test("an install waits for another install holding the root's lock")
    func waitsForLock() throws {
        let root = try Self.root()
        let holder = try LockHolder(root)
        let run = Background { try Self.install(root) }
        #expect(run.wait(0.5) == nil, "installed while another install holds the root")
        #expect(Self.tree(root).isEmpty)
        holder.release()
        guard case .success? = run.wait(30) else {
            Issue.record("the install never finished")
            return
        }
        #expect(S.read(root + "/etc/app/secret.json") == Self.files["etc/app/secret.json"])
    }

    @Test("a real table: the backend secrets bundle on an empty root")
    func backendLayout() throws {
        let root = try Self.root()
        let plan = try SecretBundleInstaller.install([BackendSecretsBundle.path: Data("{}".utf8)], layout: BackendSecretsBundle.layout,
                                                     rootPath: root, force: false, dryRun: false, now: Self.now)
        #expect(plan.steps.map(\.action) == [.mkdir, .mkdir, .create])
        #expect(S.mode(root + "/" + BackendSecretsBundle.path) == 0o600)
        #expect(S.mode(root + "/" + BackendSecretsBundle.directory) == 0o755)
    }

    // MARK: - the journal: an install killed at each point

    static func journal(_ root: RootedDirectory) -> InstallJournal { SecretBundleInstaller.journal(layout, root: root) }

    static func writeJournal(_ root: RootedDirectory, _ entries: [InstallJournal.Entry]) throws {
        let data = try JSONEncoder().encode(InstallJournal.Document(format: InstallJournal.format, entries: entries))
        try root.writeFile("etc/app/" + InstallJournal.name, data: data, mode: 0o600, owner: nil, group: nil)
    }

    static let newSecret = Data(#"{"password": "rotated"}"#.utf8)

    /// An install of a new secret.json staged and journaled, killed before any rename.
    static func killedAfterCommit(_ rootPath: String, backup: Bool) throws -> RootedDirectory {
        try install(rootPath)
        let root = try RootedDirectory(rootPath, trustedOwners: SecretBundleInstaller.trustedOwners)
        let temporary = try root.stage("etc/app/secret.json", data: newSecret, mode: 0o600, owner: nil, group: nil)
        let backupName = backup ? "secret.json" + SecretBundleInstaller.backupSuffix(now) : nil
        try writeJournal(root, [InstallJournal.Entry(path: "etc/app/secret.json", temporary: temporary, backup: backupName)])
        return root
    }

    @Test("killed after the journal's commit: the next install finishes it first (roll forward)")
    func recoverAfterCommit() throws {
        let rootPath = try Self.root()
        _ = try Self.killedAfterCommit(rootPath, backup: false)
        var files = Self.files
        files["etc/app/secret.json"] = Self.newSecret
        let plan = try Self.install(rootPath, files: files)
        #expect(plan.recovered.count == 1)
        #expect(S.read(rootPath + "/etc/app/secret.json") == Self.newSecret)
        #expect(plan.steps.allSatisfy { $0.action == .unchanged })
        #expect(!S.exists(rootPath + "/etc/app/" + InstallJournal.name))
        #expect(Self.tree(rootPath).keys.filter { Path.name(of: $0).hasPrefix(".") }.isEmpty)
    }

    @Test("a journaled replacement keeps the old file under its backup name when finished")
    func recoverKeepsBackup() throws {
        let rootPath = try Self.root()
        let root = try Self.killedAfterCommit(rootPath, backup: true)
        let notes = try Self.journal(root).recover()
        #expect(notes.count == 1)
        #expect(S.read(rootPath + "/etc/app/secret.json") == Self.newSecret)
        #expect(S.read(rootPath + "/etc/app/secret.json" + SecretBundleInstaller.backupSuffix(Self.now)) == Self.files["etc/app/secret.json"])
    }

    @Test("killed half-way through the renames: recovery does the rest and nothing twice")
    func recoverHalfDone() throws {
        let rootPath = try Self.root()
        try Self.install(rootPath)
        let root = try RootedDirectory(rootPath, trustedOwners: SecretBundleInstaller.trustedOwners)
        let newPublic = Data("new public".utf8)
        let first = try root.stage("etc/app/secret.json", data: Self.newSecret, mode: 0o600, owner: nil, group: nil)
        let second = try root.stage("etc/app/public.pem", data: newPublic, mode: 0o644, owner: nil, group: nil)
        try Self.writeJournal(root, [InstallJournal.Entry(path: "etc/app/secret.json", temporary: first, backup: nil),
                                     InstallJournal.Entry(path: "etc/app/public.pem", temporary: second, backup: nil)])
        // the first rename happened before the kill
        try root.commit("etc/app/secret.json", temporary: first)
        let notes = try Self.journal(root).recover()
        #expect(notes.count == 1)
        #expect(S.read(rootPath + "/etc/app/secret.json") == Self.newSecret)
        #expect(S.read(rootPath + "/etc/app/public.pem") == newPublic)
        #expect(try Self.journal(root).recover().isEmpty, "a second recovery has nothing to do")
    }

    @Test("killed before the commit: the staged temporaries are removed and the old files stay")
    func recoverBeforeCommit() throws {
        let rootPath = try Self.root()
        try Self.install(rootPath)
        let root = try RootedDirectory(rootPath, trustedOwners: SecretBundleInstaller.trustedOwners)
        let temporary = try root.stage("etc/app/secret.json", data: Self.newSecret, mode: 0o600, owner: nil, group: nil)
        #expect(S.exists(rootPath + "/etc/app/" + temporary))
        let plan = try Self.install(rootPath)
        #expect(plan.recovered.count == 1)
        #expect(!S.exists(rootPath + "/etc/app/" + temporary))
        #expect(S.read(rootPath + "/etc/app/secret.json") == Self.files["etc/app/secret.json"])
    }

    @Test("files that only look like temporaries (other names, uppercase) are not removed")
    func recoverLeavesOtherFiles() throws {
        let rootPath = try Self.root()
        try Self.install(rootPath)
        let others = [".secret.json.chpki-0123456789ABCDEF", ".secret.json.chpki-0123", ".other.chpki-0123456789abcdef", "secret.json.orig"]
        for name in others { try S.write("mine", to: rootPath + "/etc/app/" + name) }
        let root = try RootedDirectory(rootPath, trustedOwners: SecretBundleInstaller.trustedOwners)
        #expect(try Self.journal(root).recover().isEmpty)
        for name in others { #expect(S.exists(rootPath + "/etc/app/" + name), "\(name)") }
    }

    @Test("a dry run only reports a pending journal and leaves it")
    func dryRunPending() throws {
        let rootPath = try Self.root()
        _ = try Self.killedAfterCommit(rootPath, backup: false)
        let before = Self.tree(rootPath)
        let plan = try Self.install(rootPath, dryRun: true)
        #expect(plan.recovered.count == 1)
        #expect(Self.tree(rootPath) == before)
    }

    @Test("a journal naming a file outside the table, or a foreign temporary or backup, is refused and nothing changes", arguments: [
        InstallJournal.Entry(path: "etc/shadow", temporary: ".shadow.chpki-0123456789abcdef", backup: nil),
        InstallJournal.Entry(path: "etc/app/secret.json", temporary: "../../etc/shadow", backup: nil),
        InstallJournal.Entry(path: "etc/app/secret.json", temporary: ".secret.json.chpki-0123456789abcdef", backup: "../evil"),
    ])
    func forgedJournal(entry: InstallJournal.Entry) throws {
        let rootPath = try Self.root()
        try Self.install(rootPath)
        let root = try RootedDirectory(rootPath, trustedOwners: SecretBundleInstaller.trustedOwners)
        try Self.writeJournal(root, [entry])
        let before = Self.tree(rootPath)
        #expect(S.refusal { try Self.install(rootPath) }?.kind == .refused)
        #expect(Self.tree(rootPath) == before)
    }

    @Test("a journal that is not JSON, or of another format, is refused")
    func unreadableJournal() throws {
        let rootPath = try Self.root()
        try Self.install(rootPath)
        let root = try RootedDirectory(rootPath, trustedOwners: SecretBundleInstaller.trustedOwners)
        try root.writeFile("etc/app/" + InstallJournal.name, data: Data("garbage".utf8), mode: 0o600, owner: nil, group: nil)
        #expect(S.refusal { try Self.install(rootPath) }?.kind == .refused)
        try root.writeFile("etc/app/" + InstallJournal.name, data: try JSONEncoder().encode(InstallJournal.Document(format: "other-1", entries: [])),
                           mode: 0o600, owner: nil, group: nil)
        #expect(S.refusal { try Self.install(rootPath) }?.kind == .refused)
    }
}
