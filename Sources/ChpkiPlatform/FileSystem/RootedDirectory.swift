import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ChpkiBase

/// A directory tree that paths are resolved inside, never outside: every relative path is walked
/// one component at a time with `openat(O_NOFOLLOW | O_DIRECTORY)` from a descriptor of the root,
/// so a symlink anywhere on the way (`etc/cinc-project -> /elsewhere`, `var -> ../../outside`) or
/// as the last component is refused instead of followed, and `..` never appears (callers pass
/// checked member paths). Writes happen through the parent's descriptor: `mkdirat`,
/// `openat(O_CREAT | O_EXCL)` of a temporary name, `fchown`, `fchmod`, `fsync`, `renameat`.
///
/// With `trustedOwners`, every directory it opens — the root itself and each one on the way — is
/// also checked through the descriptor just opened (`fstat`, so nothing can be swapped between the
/// check and the use): it must belong to one of those users and must not be writable by group or
/// others (not even with the sticky bit). Whoever else owns or can write a directory could replace
/// what is installed in it after the install (SPEC §8).
///
/// Used by the installers of the secret bundles, which run as root on a new host (SPEC §8).
public final class RootedDirectory {
    /// What is at a relative path, without following a symlink.
    public enum Entry: Sendable, Equatable {
        /// Nothing (the path, or one of its parents, does not exist).
        case missing
        case directory(FileStatus)
        case regular(FileStatus)
        /// A symlink, a device, a fifo or a socket: never written through, never replaced.
        case special(FileStatus.Kind)
    }

    /// A path that cannot be used safely: a symlink or non-directory on the way.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        /// The full path (root joined with the relative path) of the offending component.
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    public let path: String
    private let descriptor: Int32
    /// nil: directories are not checked.
    private let trustedOwners: [uid_t]?

    /// Opens `path` itself (the operator's chosen root may be reached through symlinks; nothing
    /// below it may). With `trustedOwners`, the root is held to the same rule as every directory
    /// below it.
    public init(_ path: String, trustedOwners: [uid_t]? = nil) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw POSIXFailure.last("cannot open the directory \(path)") }
        self.path = path
        self.descriptor = descriptor
        self.trustedOwners = trustedOwners
        do {
            try checkTrust(descriptor, path)
        } catch {
            close(descriptor)
            throw error
        }
    }

    deinit { close(descriptor) }

    public func fullPath(_ relative: String) -> String { Path.join(path, relative) }

    /// What is at `relative`. Throws a `Refusal` when a parent is a symlink or not a directory.
    public func entry(_ relative: String) throws -> Entry {
        let (parentComponents, name) = try split(relative)
        guard let parent = try openParent(parentComponents) else { return .missing }
        defer { close(parent) }
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return .missing }
            throw POSIXFailure.last("cannot stat \(fullPath(relative))")
        }
        let status = FileStatus(info)
        switch status.kind {
        case .directory: return .directory(status)
        case .regular: return .regular(status)
        default: return .special(status.kind)
        }
    }

    /// The bytes of the regular file at `relative` (never through a symlink).
    public func read(_ relative: String, limit: Int) throws -> Data {
        try withOpenFile(relative, flags: O_RDONLY) { descriptor, _ in
            switch RegularFile.readToEnd(descriptor, limit: limit) {
            case let .data(data): return data
            case let .failed(code): throw POSIXFailure(message: "cannot read \(fullPath(relative)): \(String(cString: strerror(code)))", code: code)
            case .tooLarge: throw Refusal(path: fullPath(relative), reason: "larger than \(limit) bytes")
            }
        }
    }

    /// Creates the directory `relative` (its parent must exist) with exactly `mode` and owner. It
    /// is made under a temporary name (`isTemporary`), 0700 until owner and mode are set, and
    /// renamed into place: a kill leaves either no directory or the finished one, never one with
    /// the wrong mode (a leftover temporary is empty, and `InstallJournal.recover` removes it).
    public func makeDirectory(_ relative: String, mode: mode_t, owner: uid_t?, group: gid_t?) throws {
        let (parentComponents, name) = try split(relative)
        guard let parent = try openParent(parentComponents) else {
            throw Refusal(path: fullPath(relative), reason: "its parent directory does not exist")
        }
        defer { close(parent) }
        var temporary = ""
        var made = false
        for _ in 0..<16 {
            temporary = Self.temporaryName(for: name)
            made = mkdirat(parent, temporary, 0o700) == 0
            if made || errno != EEXIST { break }
        }
        guard made else { throw POSIXFailure.last("cannot create the directory \(fullPath(relative))") }
        do {
            let directory = openat(parent, temporary, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard directory >= 0 else { throw POSIXFailure.last("cannot open the new directory \(fullPath(relative))") }
            defer { close(directory) }
            try setOwner(directory, owner, group, relative)
            guard fchmod(directory, mode) == 0 else { throw POSIXFailure.last("cannot set the mode of \(fullPath(relative))") }
            fsync(directory)
            guard renameat(parent, temporary, parent, name) == 0 else {
                throw POSIXFailure.last("cannot rename the new directory to \(fullPath(relative))")
            }
        } catch {
            unlinkat(parent, temporary, AT_REMOVEDIR)
            throw error
        }
        fsync(parent)
    }

    /// Writes `data` as `relative` atomically: `stage`, `commit` (keeping the old file as
    /// `backupName` when given), then an fsync of the directory.
    public func writeFile(_ relative: String, data: Data, mode: mode_t, owner: uid_t?, group: gid_t?,
                          backupName: String? = nil) throws {
        let temporary = try stage(relative, data: data, mode: mode, owner: owner, group: group)
        do {
            try commit(relative, temporary: temporary, backupName: backupName)
        } catch {
            try? remove(Self.sibling(of: relative, named: temporary))
            throw error
        }
        try syncDirectory(Path.parent(of: relative))
    }

    /// A new temporary file beside `relative` (`.NAME.chpki-<16 hex digits>`, O_EXCL, never
    /// through a link) holding `data`, owner and mode set before it can get the real name, and
    /// fsync'd. Returns its name (in the same directory). Nothing is left behind when it throws.
    public func stage(_ relative: String, data: Data, mode: mode_t, owner: uid_t?, group: gid_t?) throws -> String {
        let (parentComponents, name) = try split(relative)
        guard let parent = try openParent(parentComponents) else {
            throw Refusal(path: fullPath(relative), reason: "its parent directory does not exist")
        }
        defer { close(parent) }
        var temporary = ""
        var file: Int32 = -1
        for _ in 0..<16 {
            temporary = Self.temporaryName(for: name)
            file = openat(parent, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if file >= 0 || errno != EEXIST { break }
        }
        guard file >= 0 else { throw POSIXFailure.last("cannot create a temporary file next to \(fullPath(relative))") }
        do {
            defer { close(file) }
            try writeAll(file, data, path: fullPath(relative))
            try setOwner(file, owner, group, relative)
            guard fchmod(file, mode) == 0 else { throw POSIXFailure.last("cannot set the mode of \(fullPath(relative))") }
            guard fsync(file) == 0 else { throw POSIXFailure.last("cannot fsync \(fullPath(relative))") }
        } catch {
            unlinkat(parent, temporary, 0)
            throw error
        }
        return temporary
    }

    /// "a/b" -> ["a", "b"]; "." and "" (the root itself) -> [].
    private static func components(ofDirectory relative: String) -> [String] {
        relative == "." ? [] : relative.split(separator: "/").map(String.init)
    }

    /// The path of `name` in the directory of `relative`: ("a/b", "c") -> "a/c", ("b", "c") -> "c".
    public static func sibling(of relative: String, named name: String) -> String {
        let parent = Path.parent(of: relative)
        return parent == "." ? name : parent + "/" + name
    }

    /// `.NAME.chpki-<16 hex digits>`: what `stage` and `makeDirectory` create before the real name.
    private static func temporaryName(for name: String) -> String {
        ".\(name).chpki-\(UInt64.random(in: 0...UInt64.max).hexPadded)"
    }

    /// Whether `name` is a temporary name `stage` or `makeDirectory` makes for `target`.
    public static func isTemporary(_ name: String, for target: String) -> Bool {
        let prefix = ".\(target).chpki-"
        guard name.hasPrefix(prefix) else { return false }
        let digits = name.dropFirst(prefix.count)
        return digits.count == 16 && digits.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    /// Gives `relative` the staged file `temporary` (a name in the same directory) with one
    /// `renameat`. `backupName`, when given, first keeps the old file under that name (a hard
    /// link in the same directory: same inode, mode and owner). No fsync: see `syncDirectory`.
    public func commit(_ relative: String, temporary: String, backupName: String? = nil) throws {
        let (parentComponents, name) = try split(relative)
        guard let parent = try openParent(parentComponents) else {
            throw Refusal(path: fullPath(relative), reason: "its parent directory does not exist")
        }
        defer { close(parent) }
        if let backupName {
            guard linkat(parent, name, parent, backupName, 0) == 0 else {
                throw POSIXFailure.last("cannot keep the old \(fullPath(relative)) as \(backupName)")
            }
        }
        guard renameat(parent, temporary, parent, name) == 0 else {
            throw POSIXFailure.last("cannot rename the temporary file to \(fullPath(relative))")
        }
    }

    /// fsync of the directory `relative` ("." or "" for the root): makes its renames durable.
    public func syncDirectory(_ relative: String) throws {
        guard let directory = try openParent(Self.components(ofDirectory: relative)) else {
            throw Refusal(path: fullPath(relative), reason: "does not exist")
        }
        defer { close(directory) }
        guard fsync(directory) == 0 else { throw POSIXFailure.last("cannot fsync \(fullPath(relative))") }
    }

    /// Removes the file (or symlink, or with `directory` the empty directory) `relative`; nothing
    /// when it is already gone.
    public func remove(_ relative: String, directory: Bool = false) throws {
        let (parentComponents, name) = try split(relative)
        guard let parent = try openParent(parentComponents) else { return }
        defer { close(parent) }
        guard unlinkat(parent, name, directory ? AT_REMOVEDIR : 0) == 0 || errno == ENOENT else {
            throw POSIXFailure.last("cannot remove \(fullPath(relative))")
        }
    }

    /// The names in the directory `relative` ("." for the root), or [] when it does not exist.
    public func names(in relative: String) throws -> [String] {
        guard let directory = try openParent(Self.components(ofDirectory: relative)) else { return [] }
        guard let stream = fdopendir(directory) else {
            close(directory)
            throw POSIXFailure.last("cannot list \(fullPath(relative))")
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Whether `a` and `b` (not followed) are the same inode: a backup link already made.
    public func sameFile(_ a: String, _ b: String) throws -> Bool {
        guard let first = try identity(a), let second = try identity(b) else { return false }
        return first == second
    }

    private func identity(_ relative: String) throws -> [UInt]? {
        let (parentComponents, name) = try split(relative)
        guard let parent = try openParent(parentComponents) else { return nil }
        defer { close(parent) }
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return nil }
            throw POSIXFailure.last("cannot stat \(fullPath(relative))")
        }
        return [UInt(info.st_dev), UInt(info.st_ino)]
    }

    // MARK: - resolution

    /// `a/b/c` -> (["a", "b"], "c"); refuses empty, `.` and `..` components and absolute paths.
    private func split(_ relative: String) throws -> ([String], String) {
        let components = relative.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !relative.hasPrefix("/"), let name = components.last,
              components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("\0") }) else {
            throw Refusal(path: fullPath(relative), reason: "not a plain relative path")
        }
        return (Array(components.dropLast()), name)
    }

    /// A descriptor of the directory `components` below the root, or nil when one is missing.
    /// Every component is opened with O_NOFOLLOW | O_DIRECTORY from its parent's descriptor.
    private func openParent(_ components: [String]) throws -> Int32? {
        var current = dup(descriptor)
        guard current >= 0 else { throw POSIXFailure.last("cannot use the directory \(path)") }
        var walked = ""
        for component in components {
            walked = walked.isEmpty ? component : walked + "/" + component
            let next = openat(current, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 {
                let code = errno
                var info = stat()
                let statted = fstatat(current, component, &info, AT_SYMLINK_NOFOLLOW) == 0
                close(current)
                if code == ENOENT { return nil }
                if statted && FileStatus(info).kind == .symlink {
                    throw Refusal(path: fullPath(walked), reason: "is a symlink; refusing to follow it (a directory on the way must be a real directory inside \(path))")
                }
                if code == ENOTDIR || code == ELOOP || (statted && FileStatus(info).kind != .directory) {
                    throw Refusal(path: fullPath(walked), reason: "exists and is not a directory")
                }
                errno = code
                throw POSIXFailure.last("cannot open \(fullPath(walked))")
            }
            close(current)
            current = next
            try checkTrust(current, fullPath(walked)) { close(current) }
        }
        return current
    }

    /// Why the directory with `status` may not hold what is installed, or nil when it may (or when
    /// this tree checks nothing). The one rule for planning and for every descriptor opened.
    public func distrust(_ status: FileStatus) -> String? {
        guard let owners = trustedOwners else { return nil }
        let allowed = owners.map(Accounts.userName).joined(separator: " or ")
        switch OwnershipRule.violations(status, owners: owners).first {
        case nil:
            return nil
        case .foreignOwner:
            return "directory owned by \(status.owner) (uid \(status.uid)), not \(allowed): its owner could replace what is installed in it; refused (chown it to root, or remove it)"
        case .writableByOthers:
            let sticky = status.mode & 0o1000 != 0 ? " (the sticky bit does not stop new names)" : ""
            return "directory mode \(ModeText.format(status.mode)) lets group or others write in it\(sticky): they could replace what is installed in it; refused (chmod go-w it)"
        }
    }

    /// Refuses the open directory `directory` (named `shown`) when `distrust` says so; `cleanup`
    /// runs first (the caller's descriptor).
    private func checkTrust(_ directory: Int32, _ shown: String, cleanup: () -> Void = {}) throws {
        guard trustedOwners != nil else { return }
        var info = stat()
        guard fstat(directory, &info) == 0 else {
            let failure = POSIXFailure.last("cannot stat \(shown)")
            cleanup()
            throw failure
        }
        if let problem = distrust(FileStatus(info)) {
            cleanup()
            throw Refusal(path: shown, reason: problem)
        }
    }

    private func withOpenFile<T>(_ relative: String, flags: Int32, _ body: (Int32, FileStatus) throws -> T) throws -> T {
        let (parentComponents, name) = try split(relative)
        guard let parent = try openParent(parentComponents) else {
            throw Refusal(path: fullPath(relative), reason: "does not exist")
        }
        defer { close(parent) }
        let file = openat(parent, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard file >= 0 else {
            if errno == ELOOP { throw Refusal(path: fullPath(relative), reason: "is a symlink; refusing to follow it") }
            throw POSIXFailure.last("cannot open \(fullPath(relative))")
        }
        defer { close(file) }
        var info = stat()
        guard fstat(file, &info) == 0 else { throw POSIXFailure.last("cannot stat \(fullPath(relative))") }
        let status = FileStatus(info)
        guard status.kind == .regular else { throw Refusal(path: fullPath(relative), reason: "exists and is not a regular file") }
        return try body(file, status)
    }

    private func setOwner(_ descriptor: Int32, _ owner: uid_t?, _ group: gid_t?, _ relative: String) throws {
        guard owner != nil || group != nil else { return }
        guard fchown(descriptor, owner ?? uid_t.max, group ?? gid_t.max) == 0 else {
            throw POSIXFailure.last("cannot set the owner of \(fullPath(relative))")
        }
    }

    private func writeAll(_ descriptor: Int32, _ data: Data, path: String) throws {
        try data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            var offset = 0
            while offset < raw.count {
                let written = Glibc.write(descriptor, base + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw POSIXFailure.last("cannot write \(path)")
                }
                offset += written
            }
        }
    }
}

private extension UInt64 {
    var hexPadded: String {
        let digits = String(self, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
