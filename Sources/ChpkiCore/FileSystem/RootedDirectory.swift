import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A directory tree that paths are resolved inside, never outside: every relative path is walked
/// one component at a time with `openat(O_NOFOLLOW | O_DIRECTORY)` from a descriptor of the root,
/// so a symlink anywhere on the way (`etc/cinc-project -> /elsewhere`, `var -> ../../outside`) or
/// as the last component is refused instead of followed, and `..` never appears (callers pass
/// checked member paths). Writes happen through the parent's descriptor: `mkdirat`,
/// `openat(O_CREAT | O_EXCL)` of a temporary name, `fchown`, `fchmod`, `fsync`, `renameat`.
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

    /// Opens `path` itself (the operator's chosen root may be reached through symlinks; nothing
    /// below it may).
    public init(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw POSIXFailure.last("cannot open the directory \(path)") }
        self.path = path
        self.descriptor = descriptor
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

    /// Creates the directory `relative` (its parent must exist) with exactly `mode` and owner.
    public func makeDirectory(_ relative: String, mode: mode_t, owner: uid_t?, group: gid_t?) throws {
        let (parentComponents, name) = try split(relative)
        guard let parent = try openParent(parentComponents) else {
            throw Refusal(path: fullPath(relative), reason: "its parent directory does not exist")
        }
        defer { close(parent) }
        // 0700 until owner and mode are set: never briefly wider than asked.
        guard mkdirat(parent, name, 0o700) == 0 else { throw POSIXFailure.last("cannot create the directory \(fullPath(relative))") }
        let directory = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { throw POSIXFailure.last("cannot open the new directory \(fullPath(relative))") }
        defer { close(directory) }
        try setOwner(directory, owner, group, relative)
        guard fchmod(directory, mode) == 0 else { throw POSIXFailure.last("cannot set the mode of \(fullPath(relative))") }
        fsync(directory)
        fsync(parent)
    }

    /// Writes `data` as `relative` atomically: a new temporary file beside it (O_EXCL, never
    /// through a link), owner and mode set before it gets its name, fsync, renameat, fsync of the
    /// directory. `backupName`, when given, first keeps the old file under that name (a hard
    /// link in the same directory: same inode, mode and owner).
    public func writeFile(_ relative: String, data: Data, mode: mode_t, owner: uid_t?, group: gid_t?,
                          backupName: String? = nil) throws {
        let (parentComponents, name) = try split(relative)
        guard let parent = try openParent(parentComponents) else {
            throw Refusal(path: fullPath(relative), reason: "its parent directory does not exist")
        }
        defer { close(parent) }
        var temporary = ""
        var file: Int32 = -1
        for _ in 0..<16 {
            temporary = ".\(name).chpki-\(UInt64.random(in: 0...UInt64.max).hexPadded)"
            file = openat(parent, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if file >= 0 || errno != EEXIST { break }
        }
        guard file >= 0 else { throw POSIXFailure.last("cannot create a temporary file next to \(fullPath(relative))") }
        var renamed = false
        defer { if !renamed { unlinkat(parent, temporary, 0) } }
        do {
            defer { close(file) }
            try writeAll(file, data, path: fullPath(relative))
            try setOwner(file, owner, group, relative)
            guard fchmod(file, mode) == 0 else { throw POSIXFailure.last("cannot set the mode of \(fullPath(relative))") }
            guard fsync(file) == 0 else { throw POSIXFailure.last("cannot fsync \(fullPath(relative))") }
        }
        if let backupName {
            guard linkat(parent, name, parent, backupName, 0) == 0 else {
                throw POSIXFailure.last("cannot keep the old \(fullPath(relative)) as \(backupName)")
            }
        }
        guard renameat(parent, temporary, parent, name) == 0 else {
            throw POSIXFailure.last("cannot rename the temporary file to \(fullPath(relative))")
        }
        renamed = true
        fsync(parent)
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
        }
        return current
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
