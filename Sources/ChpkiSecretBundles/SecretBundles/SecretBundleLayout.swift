import ChpkiPlatform
import Foundation

/// The fixed table of a secret bundle (SPEC §5): which files and directories it may hold and the
/// mode each is installed with; every one is owned by root. The writer puts exactly these values
/// into the manifest, the reader refuses a manifest that says anything else, and the installer
/// reads only this table, never the bundle, so a crafted bundle cannot install a setuid file, a
/// group-writable secret or a file owned by `nobody`.
public struct SecretBundleLayout: Sendable {
    public struct File: Sendable, Equatable {
        /// Relative to the root.
        public var path: String
        public var mode: UInt16
    }

    public struct Directory: Sendable, Equatable {
        public var path: String
        /// 0755, or 0700 for a directory only root may enter.
        public var mode: UInt16
    }

    /// How refusals name the bundle kind: "cinc frontend bundle".
    public var name: String
    /// `MANIFEST.json` `format`.
    public var format: String
    /// In install order.
    public var files: [File]
    public var directories: [Directory]
    /// Also accepted as an owner or group in a manifest (it cannot hurt), though install writes root.
    public var serviceAccount: String?

    public static let owner = "root"
    public static let group = "root"
    /// Ancestors the table does not list (`etc`, `var/opt`) are created like system directories.
    public static let ancestorMode: UInt16 = 0o755

    public func file(at path: String) -> File? { files.first { $0.path == path } }
    public func directory(at path: String) -> Directory? { directories.first { $0.path == path } }

    /// Why a manifest entry (or an archive member) asking for `mode`, `owner` and `group` at
    /// `path` is refused, or nil when it agrees with the table.
    public func disagreement(path: String, mode: UInt16, owner: String, group: String, isDirectory: Bool) -> String? {
        let expected: UInt16
        if isDirectory {
            guard let directory = directory(at: path) else { return "not a directory of a \(name); refusing to create it" }
            expected = directory.mode
        } else {
            guard let file = file(at: path) else { return "not a file of a \(name); refusing to install it" }
            expected = file.mode
        }
        let shown = ModeText.format(mode)
        if mode & 0o7000 != 0 {
            return "mode \(shown) sets the setuid, setgid or sticky bit; refused (SPEC §5 fixes \(ModeText.format(expected)))"
        }
        if mode & 0o022 != 0 {
            return "mode \(shown) lets group or others write; refused (SPEC §5 fixes \(ModeText.format(expected)))"
        }
        if mode != expected {
            return "mode \(shown) is not the \(ModeText.format(expected)) SPEC §5 fixes; refused"
        }
        for (kind, value) in [("owner", owner), ("group", group)] where !accepts(value) {
            let allowed = [Self.owner] + (serviceAccount.map { [$0] } ?? [])
            return "\(kind) '\(value)' is not \(allowed.joined(separator: " or ")); refused"
        }
        return nil
    }

    func accepts(_ account: String) -> Bool { account == Self.owner || account == serviceAccount }
}

/// The size limits of a secret bundle, one constant for both sides: the writers refuse to make a
/// bigger bundle, the readers refuse to open one. Frontend secrets are kilobytes; these leave
/// room for large configuration files and stop a decompression bomb early.
public enum SecretBundleLimits {
    public static let tar = Tar.Limits(memberSize: 1 << 20, archiveSize: 8 << 20)
    /// The file on disk: a CMS envelope in PEM is the gzip plus about a third, plus headers.
    public static let fileSize = 12 << 20
}
