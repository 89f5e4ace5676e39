import ChpkiBase
import ChpkiCA
import ChpkiPlatform
import ChpkiReporting
import Foundation

/// Lays a checked secret bundle out under a root: missing directories first, then each file
/// atomically, `bootstrapped` last (the layout's order). Modes and owners come from the layout's
/// table, never from the bundle. Every path is resolved inside the root without following a
/// symlink (`RootedDirectory`), and everything is checked before anything is written: a refused
/// install leaves the root as it was. An existing file that differs is replaced only with
/// `force`, and then its old copy is kept beside it. Every directory on the way, the root
/// included, must be root's (or the invoking user's) and not writable by group or others
/// (`RootedDirectory`'s trusted owners). The files of one install take their names as one unit
/// across a crash (`InstallJournal`).
public enum SecretBundleInstaller {
    public enum Action: String, Sendable, Encodable {
        case mkdir, create, replace, unchanged
        /// Same content; mode or owner set to the table's (by writing a new file over it).
        case metadata = "set-mode"
    }

    public struct Step: Sendable, Encodable {
        public var action: Action
        public var path: String
        public var mode: String
        public var owner: String
        public var group: String
        @NullEncoded public var backup: String?

        /// Relative to the root.
        var relative: String
        var data: Data?
        var numericMode: UInt16

        enum CodingKeys: String, CodingKey { case action, path, mode, owner, group, backup }
    }

    public struct Plan: Sendable {
        public var steps: [Step] = []
        /// Existing files that differ (without force), things in the way, symlinks on the way:
        /// the install is refused and nothing is written.
        public var conflicts: [String] = []
        /// Said once: why owners are not set.
        public var ownershipNote: String?
        /// uid/gid 0 when running as root; nil (keep the installing user) otherwise.
        var ids: (uid_t?, gid_t?) = (nil, nil)
        /// What the recovery step at the start did (an interrupted install finished, leftovers removed).
        public var recovered: [String] = []
    }

    /// Who may own a directory an install goes through: root, and the invoking user when that is
    /// not root (whose own directories hold files it installs as itself anyway).
    static var trustedOwners: [uid_t] { OwnershipRule.owners }

    /// Where the journal of a `layout` install lives: the directory of its first file (the
    /// configuration directory, which holds the secrets), checked like every target directory.
    static func journal(_ layout: SecretBundleLayout, root: RootedDirectory) -> InstallJournal {
        InstallJournal(root: root, directory: Path.parent(of: layout.files[0].path), targets: layout.files.map(\.path))
    }

    public static func backupSuffix(_ now: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return ".chpki-backup-" + formatter.string(from: now)
    }

    /// `files`: path -> bytes, installed in the layout's order.
    public static func plan(_ files: [String: Data], layout: SecretBundleLayout, root: RootedDirectory, force: Bool,
                            now: Date) throws -> Plan {
        var plan = Plan()
        let isRoot = Accounts.isRoot
        plan.ids = isRoot ? (0, 0) : (nil, nil)
        let ordered = layout.files.filter { files[$0.path] != nil }
        let owner = SecretBundleLayout.owner, group = SecretBundleLayout.group

        // Every ancestor directory of every file, shallowest first.
        var directories: [String] = []
        for file in ordered {
            let components = file.path.split(separator: "/").dropLast()
            for depth in components.indices {
                let directory = components[...depth].joined(separator: "/")
                if !directories.contains(directory) { directories.append(directory) }
            }
        }
        directories.sort { $0.split(separator: "/").count < $1.split(separator: "/").count }
        var refusedDirectories: [String] = []
        for directory in directories {
            // One line for a symlink or a file in the way, not one per file below it.
            if refusedDirectories.contains(where: { directory.hasPrefix($0 + "/") }) { continue }
            do {
                switch try root.entry(directory) {
                case let .directory(status):
                    // Checked here to name this directory once; every descriptor opened below is
                    // checked again (fstat) when it is used.
                    if let problem = root.distrust(status) {
                        refusedDirectories.append(directory)
                        plan.conflicts.append("\(root.fullPath(directory)): \(problem)")
                    }
                case .missing:
                    let mode = layout.directory(at: directory)?.mode ?? SecretBundleLayout.ancestorMode
                    plan.steps.append(Step(action: .mkdir, path: root.fullPath(directory), mode: ModeText.format(mode), owner: owner,
                                           group: group, relative: directory, numericMode: mode))
                case let .special(kind):
                    refusedDirectories.append(directory)
                    plan.conflicts.append("\(root.fullPath(directory)): \(kind == .symlink ? "is a symlink; refusing to follow it (a directory on the way must be a real directory inside \(root.path))" : "exists and is not a directory")")
                case .regular:
                    refusedDirectories.append(directory)
                    plan.conflicts.append("\(root.fullPath(directory)): exists and is not a directory")
                }
            } catch let refusal as RootedDirectory.Refusal {
                refusedDirectories.append(directory)
                plan.conflicts.append(refusal.description)
            }
        }

        let suffix = backupSuffix(now)
        for file in ordered {
            if refusedDirectories.contains(where: { file.path.hasPrefix($0 + "/") }) { continue }
            let path = root.fullPath(file.path)
            let data = files[file.path]!
            var step = Step(action: .create, path: path, mode: ModeText.format(file.mode), owner: owner, group: group,
                            relative: file.path, data: data, numericMode: file.mode)
            do {
                switch try root.entry(file.path) {
                case .missing:
                    break
                case .directory:
                    plan.conflicts.append("\(path): exists and is not a regular file (a directory); move it away first")
                    continue
                case let .special(kind):
                    plan.conflicts.append("\(path): exists and is not a regular file (\(kind == .symlink ? "a symlink, never followed" : "a special file")); move it away first")
                    continue
                case let .regular(status):
                    let existing = try root.read(file.path, limit: SecretBundleLimits.tar.memberSize)
                    if existing == data {
                        let ownerDiffers = isRoot && (status.uid != 0 || status.gid != 0)
                        step.action = status.mode != file.mode || ownerDiffers ? .metadata : .unchanged
                    } else if force {
                        step.action = .replace
                        let name = try InstallJournal.freeName(Path.name(of: file.path) + suffix, beside: file.path, in: root)
                        step.backup = root.fullPath(RootedDirectory.sibling(of: file.path, named: name))
                    } else {
                        plan.conflicts.append("\(path): exists and differs from the bundle; --force replaces it and keeps the old file as \(Path.name(of: path))\(suffix)")
                        continue
                    }
                }
            } catch let refusal as RootedDirectory.Refusal {
                plan.conflicts.append(refusal.description)
                continue
            }
            plan.steps.append(step)
        }

        if !isRoot {
            plan.ownershipNote = "not running as root: files keep the installing user as owner instead of root (run as root, or chown them before reconfigure)"
        }
        return plan
    }

    /// Carries out `plan` under `root`; the caller has checked it has no conflicts and has run
    /// `journal.recover()`. Directories first, then every file staged as a temporary beside its
    /// target, then the journal's commit renames them all. Each step resolves its path again
    /// without following symlinks (and checks each directory again), so a symlink or a foreign
    /// directory planted meanwhile stops the install instead of redirecting it.
    public static func apply(_ plan: Plan, root: RootedDirectory, journal: InstallJournal) throws {
        let (uid, gid) = plan.ids
        for step in plan.steps where step.action == .mkdir {
            try root.makeDirectory(step.relative, mode: mode_t(step.numericMode), owner: uid, group: gid)
        }
        var entries: [InstallJournal.Entry] = []
        do {
            for step in plan.steps where [.create, .replace, .metadata].contains(step.action) {
                // A mode or owner fix writes a new file too: chmod in place would reach any other
                // name of the same inode (a hard link planted in the root), a rename never does.
                let temporary = try root.stage(step.relative, data: step.data ?? Data(), mode: mode_t(step.numericMode),
                                               owner: uid, group: gid)
                entries.append(InstallJournal.Entry(path: step.relative, temporary: temporary,
                                                    backup: step.backup.map(Path.name(of:))))
            }
            // The staged names are durable before the journal that lists them.
            var directories: [String] = []
            for entry in entries where !directories.contains(Path.parent(of: entry.path)) {
                directories.append(Path.parent(of: entry.path))
            }
            for directory in directories { try root.syncDirectory(directory) }
        } catch {
            for entry in entries { try? root.remove(RootedDirectory.sibling(of: entry.path, named: entry.temporary)) }
            throw error
        }
        guard !entries.isEmpty else { return }
        try journal.commit(entries)
    }
}

/// What every install command takes: the bundle file, the root, and how to proceed.
public struct SecretBundleInstallOptions: Sendable {
    public var file: String
    public var root = "/"
    public var dryRun = false
    public var force = false
    public var passphraseFile: String?

    public init(file: String) {
        self.file = file
    }

    /// The passphrase of an encrypted bundle: --passphrase-file, else CHPKI_BUNDLE_PASSPHRASE,
    /// else a prompt naming `bundle` and the file. Asked only when the bundle turns out encrypted.
    package func passphrase(for bundle: String, environment: [String: String]) throws -> Passphrase {
        try PassphraseSource(file: passphraseFile, environment: environment,
                             variable: PassphraseSource.bundleEnvironmentVariable)
            .existingPassphrase(purpose: "\(bundle) \(file)")
    }
}

extension SecretBundleInstaller {
    /// The whole install of checked `files` into `rootPath`: open the root, plan, refuse on any
    /// conflict (one line each, nothing written), else apply unless `dryRun`.
    public static func install(_ files: [String: Data], layout: SecretBundleLayout, rootPath: String, force: Bool,
                               dryRun: Bool, now: Date) throws -> Plan {
        guard let rootStatus = try FileStatus.of(rootPath) else {
            throw ChpkiError.input(.fileMissing, file: rootPath, field: "--root", "no such directory")
        }
        guard rootStatus.kind == .directory else { throw ChpkiError.input(.fileNotDirectory, file: rootPath, field: "--root", "not a directory") }
        do {
            let root = try RootedDirectory(rootPath, trustedOwners: trustedOwners)
            let journal = journal(layout, root: root)
            // One install at a time per root: recovery must never finish or remove another run's files.
            let lock = dryRun ? nil : try DirectoryLock(directory: rootPath)
            defer { withExtendedLifetime(lock) {} }
            // A dry run writes nothing, not even a recovery; it plans against the root as it is.
            let recovered = dryRun ? try journal.pending() : try journal.recover()
            var plan = try SecretBundleInstaller.plan(files, layout: layout, root: root, force: force, now: now)
            plan.recovered = recovered
            guard plan.conflicts.isEmpty else { throw ChpkiError(.installConflict, problems: plan.conflicts) }
            if !dryRun { try apply(plan, root: root, journal: journal) }
            return plan
        } catch let refusal as RootedDirectory.Refusal {
            throw ChpkiError(.installUnsafePath, refusal.description)
        }
    }

    /// The plan as the install commands print it, one line per step.
    static func lines(_ plan: Plan, dryRun: Bool) -> [String] {
        plan.steps.map { step in
            let verb = dryRun ? "would \(step.action.rawValue)" : step.action.rawValue
            var line = "  \(verb.padding(toLength: dryRun ? 15 : 9, withPad: " ", startingAt: 0))  \(step.mode)  \("\(step.owner):\(step.group)".padding(toLength: 12, withPad: " ", startingAt: 0))  \(step.path)"
            if let backup = step.backup { line += "  (old file kept as \(backup))" }
            return line
        }
    }

    static func summary(_ plan: Plan, dryRun: Bool) -> String {
        let count = { (action: Action) in plan.steps.filter { $0.action == action }.count }
        return "  \(count(.create)) created, \(count(.replace)) replaced, \(count(.metadata)) mode/owner set, \(count(.unchanged)) unchanged, \(count(.mkdir)) directories created\(dryRun ? " (nothing written)" : "")"
    }

    /// What every install command prints after its JSON report: the headline naming `bundle`
    /// (e.g. "the cinc frontend bundle"), one line per step, the counts and the ownership note.
    package static func describe(_ plan: Plan, bundle: String, options: SecretBundleInstallOptions, reporter: Reporter) {
        if options.dryRun {
            reporter.line("Dry run: installing \(bundle) \(options.file) into \(options.root) would:")
        } else {
            reporter.line("Installed \(bundle) \(options.file) into \(options.root):")
        }
        for note in plan.recovered { reporter.note(note) }
        for line in lines(plan, dryRun: options.dryRun) { reporter.line(line) }
        reporter.line(summary(plan, dryRun: options.dryRun))
        if let note = plan.ownershipNote { reporter.note(note) }
    }
}
