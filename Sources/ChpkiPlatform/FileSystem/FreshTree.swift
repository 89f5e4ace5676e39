import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ChpkiBase

/// Writing a new directory tree that nobody else sees yet (a staging directory), as fast as the
/// file system allows: plain creates (no temporary file and rename per file), one `syncfs` for a
/// whole batch of trees instead of an fsync per file, and an atomic exchange to put a tree in
/// place. Used by `chpki bundle`, whose trees are rebuilt from the CA at any time.
public enum FreshTree {
    /// Creates `path` (which must not exist) with exactly `mode`, its content, and `modified` as its time.
    public static func createFile(_ path: String, _ data: Data, mode: UInt16, modified: Date) throws {
        try data.withUnsafeBytes { try createFile(path, bytes: $0, mode: mode, modified: modified) }
    }

    /// The same from a borrowed buffer (a key's `SecretBytes`): nothing is copied on the way to write(2).
    public static func createFile(_ path: String, bytes: UnsafeRawBufferPointer, mode: UInt16, modified: Date) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw POSIXFailure.last("cannot create \(path)") }
        defer { close(descriptor) }
        try AtomicFile.writeAll(descriptor, bytes, path: path)
        guard fchmod(descriptor, mode_t(mode)) == 0 else { throw POSIXFailure.last("cannot set the mode of \(path)") }
        var times = [timespec(modified), timespec(modified)]
        guard futimens(descriptor, &times) == 0 else { throw POSIXFailure.last("cannot set the time of \(path)") }
    }

    /// Creates a directory (or keeps an existing one) and sets its mode exactly (not under the umask).
    public static func makeDirectory(_ path: String, mode: UInt16) throws {
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw POSIXFailure.last("cannot create \(path)") }
        guard chmod(path, mode_t(mode)) == 0 else { throw POSIXFailure.last("cannot set the mode of \(path)") }
    }

    /// Sets a directory's time (after its entries are written, which change it).
    public static func setTime(_ path: String, _ modified: Date) {
        var times = [timespec(modified), timespec(modified)]
        utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
    }

    /// Makes everything written so far on the file system of `path` durable, in one call.
    public static func syncFileSystem(containing path: String) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw POSIXFailure.last("cannot open \(path)") }
        defer { close(descriptor) }
        if let syncfs = GNU.syncfs {
            guard syncfs(descriptor) == 0 else { throw POSIXFailure.last("cannot sync the file system of \(path)") }
        } else {
            sync()
        }
    }

    /// Puts `staging` in place of `target` at once: a reader sees the old tree or the new one.
    /// Returns the path now holding the old tree (to remove), or nil when there was none.
    public static func replace(_ target: String, with staging: String) throws -> String? {
        if let renameat2 = GNU.renameat2 {
            if renameat2(AT_FDCWD, staging, AT_FDCWD, target, GNU.renameExchange) == 0 { return staging }
            guard errno == ENOENT || errno == EINVAL || errno == ENOSYS else {
                throw POSIXFailure.last("cannot put the new tree in place of \(target)")
            }
        }
        guard FileManager.default.fileExists(atPath: target) else {
            guard Glibc.rename(staging, target) == 0 else { throw POSIXFailure.last("cannot move the new tree to \(target)") }
            return nil
        }
        // No atomic exchange here: move the old tree aside, then the new one in (a short window without either).
        let old = staging + ".old"
        guard Glibc.rename(target, old) == 0 else { throw POSIXFailure.last("cannot move \(target) aside") }
        guard Glibc.rename(staging, target) == 0 else {
            Glibc.rename(old, target)
            throw POSIXFailure.last("cannot move the new tree to \(target)")
        }
        return old
    }

    /// Renames a finished file over its target (durability comes from `syncFileSystem` before).
    public static func rename(_ from: String, to target: String) throws {
        guard Glibc.rename(from, target) == 0 else { throw POSIXFailure.last("cannot rename \(from) to \(target)") }
    }

    /// glibc's GNU extensions, which Swift's Glibc module does not declare (no _GNU_SOURCE).
    private enum GNU {
        typealias SyncFS = @convention(c) (Int32) -> Int32
        typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
        static let renameExchange: UInt32 = 1 << 1  // RENAME_EXCHANGE, <linux/fs.h>
        static let syncfs: SyncFS? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "syncfs").map { unsafeBitCast($0, to: SyncFS.self) }
        static let renameat2: RenameAt2? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "renameat2").map { unsafeBitCast($0, to: RenameAt2.self) }
    }

    private static func timespec(_ date: Date) -> Glibc.timespec {
        Glibc.timespec(tv_sec: Int(date.timeIntervalSince1970.rounded(.down)), tv_nsec: 0)
    }
}
