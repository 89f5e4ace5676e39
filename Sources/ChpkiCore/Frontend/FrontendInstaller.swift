import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Lays a checked bundle out under a root: missing directories first, then each file atomically
/// with its mode and owner, `bootstrapped` last. An existing file that differs is replaced only
/// with `force`, and then its old copy is kept beside it.
public enum FrontendInstaller {
    public enum Action: String, Sendable, Encodable {
        case mkdir, create, replace, unchanged
        /// Same content; mode or owner set to the bundle's.
        case metadata = "set-mode"
    }

    public struct Step: Sendable, Encodable {
        public var action: Action
        public var path: String
        public var mode: String
        public var owner: String
        public var group: String
        @NullEncoded public var backup: String?

        var data: Data?
        var numericMode: UInt16
        var uid: uid_t?
        var gid: gid_t?

        enum CodingKeys: String, CodingKey { case action, path, mode, owner, group, backup }

    }

    public struct Plan: Sendable {
        public var steps: [Step] = []
        /// Existing files that differ (without force) or are in the way: the install is refused.
        public var conflicts: [String] = []
        /// Said once: why owners are not set as the bundle says.
        public var ownershipNote: String?
    }

    public static func backupSuffix(_ now: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return ".chpki-backup-" + formatter.string(from: now)
    }

    public static func plan(_ bundle: FrontendBundle, root: String, force: Bool, now: Date) throws -> Plan {
        var plan = Plan()
        let canChown = Accounts.isRoot
        var unknownNames: [String] = []
        func ids(owner: String, group: String) -> (uid_t?, gid_t?) {
            guard canChown else { return (nil, nil) }
            let uid = Accounts.userID(owner), gid = Accounts.groupID(group)
            if uid == nil, !unknownNames.contains("user \(owner)") { unknownNames.append("user \(owner)") }
            if gid == nil, !unknownNames.contains("group \(group)") { unknownNames.append("group \(group)") }
            return (uid, gid)
        }

        // Every ancestor directory of every file, shallowest first.
        var directories: [String] = []
        for file in bundle.files {
            var components = file.path.split(separator: "/").dropLast()
            var chain: [String] = []
            while !components.isEmpty {
                chain.insert(components.joined(separator: "/"), at: 0)
                components = components.dropLast()
            }
            for directory in chain where !directories.contains(directory) { directories.append(directory) }
        }
        directories.sort { $0.split(separator: "/").count < $1.split(separator: "/").count }
        for directory in directories {
            let path = Path.join(root, directory)
            if let status = try FileStatus.of(path) {
                if status.kind != .directory { plan.conflicts.append("\(path): exists and is not a directory") }
                continue
            }
            let recorded = bundle.directories.first { $0.path == directory }
            let owner = recorded?.owner ?? "root", group = recorded?.group ?? "root"
            let (uid, gid) = ids(owner: owner, group: group)
            let mode = recorded?.mode ?? 0o755
            plan.steps.append(Step(action: .mkdir, path: path, mode: ModeText.format(mode), owner: owner, group: group,
                                   numericMode: mode, uid: uid, gid: gid))
        }

        let suffix = backupSuffix(now)
        for file in bundle.files {
            let path = Path.join(root, file.path)
            let (uid, gid) = ids(owner: file.owner, group: file.group)
            var step = Step(action: .create, path: path, mode: ModeText.format(file.mode), owner: file.owner, group: file.group,
                            data: file.data, numericMode: file.mode, uid: uid, gid: gid)
            if let status = try FileStatus.of(path, followLinks: false) {
                guard status.kind == .regular else {
                    plan.conflicts.append("\(path): exists and is not a regular file (\(status.kind)); move it away first")
                    continue
                }
                let existing: Data
                switch RegularFile.read(path) {
                case let .success((data, _)): existing = data
                case let .failure(failure):
                    plan.conflicts.append("\(path): exists but cannot be read (\(failure))")
                    continue
                }
                if existing == file.data {
                    let ownerDiffers = (uid != nil && uid != status.uid) || (gid != nil && gid != status.gid)
                    step.action = status.mode != file.mode || ownerDiffers ? .metadata : .unchanged
                } else if force {
                    step.action = .replace
                    step.backup = path + suffix
                } else {
                    plan.conflicts.append("\(path): exists and differs from the bundle; --force replaces it and keeps the old file as \(Path.name(of: path))\(suffix)")
                    continue
                }
            }
            plan.steps.append(step)
        }

        if !canChown {
            plan.ownershipNote = "not running as root: files keep the installing user as owner instead of the bundle's (run as root, or chown them before reconfigure)"
        } else if !unknownNames.isEmpty {
            plan.ownershipNote = "\(unknownNames.joined(separator: ", ")) not found here: those files stay owned by root (reconfigure sets the service owners)"
        }
        return plan
    }

    /// Carries out `plan`; the caller has checked it has no conflicts.
    public static func apply(_ plan: Plan) throws {
        for step in plan.steps {
            switch step.action {
            case .unchanged:
                continue
            case .mkdir:
                guard mkdir(step.path, mode_t(step.numericMode)) == 0 || errno == EEXIST else {
                    throw POSIXFailure.last("cannot create directory \(step.path)")
                }
                // mkdir's mode passes through the umask; set it exactly.
                guard chmod(step.path, mode_t(step.numericMode)) == 0 else { throw POSIXFailure.last("cannot set the mode of \(step.path)") }
                try setOwner(step)
            case .metadata:
                try setOwner(step)
                guard chmod(step.path, mode_t(step.numericMode)) == 0 else { throw POSIXFailure.last("cannot set the mode of \(step.path)") }
            case .create, .replace:
                if let backup = step.backup {
                    // A hard link keeps the old file (inode, mode, owner) while the new one is renamed over the name.
                    guard link(step.path, backup) == 0 else { throw POSIXFailure.last("cannot keep a backup of \(step.path) as \(backup)") }
                }
                try AtomicFile.write(step.data ?? Data(), to: step.path, mode: mode_t(step.numericMode), owner: step.uid, group: step.gid)
            }
        }
    }

    private static func setOwner(_ step: Step) throws {
        guard step.uid != nil || step.gid != nil else { return }
        guard chown(step.path, step.uid ?? uid_t.max, step.gid ?? gid_t.max) == 0 else {
            throw POSIXFailure.last("cannot set the owner of \(step.path)")
        }
    }
}
