import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ChpkiBase

/// The plain POSIX file operations the rest of chpki needs (directories, renames, removals, modes),
/// so that no file outside FileSystem/ calls libc. Each failure is a `POSIXFailure` with errno's text.
public enum FileOperations {
    /// Creates `path` with `mode` (subject to the umask, then set exactly); true if this call created
    /// it, false if a directory or file was already there.
    @discardableResult
    public static func createDirectory(_ path: String, mode: mode_t) throws -> Bool {
        if mkdir(path, mode) == 0 {
            chmod(path, mode)
            return true
        }
        if errno == EEXIST { return false }
        throw POSIXFailure.last("cannot create the directory \(path)")
    }

    /// Removes a file; a file already gone is not an error.
    public static func removeFile(_ path: String) throws {
        guard unlink(path) == 0 || errno == ENOENT else { throw POSIXFailure.last("cannot remove \(path)") }
    }

    /// Best-effort cleanup of a file, for error paths that already throw something better.
    public static func removeFileIgnoringErrors(_ path: String) {
        _ = unlink(path)
    }

    /// Best-effort removal of an empty directory, for error paths.
    public static func removeEmptyDirectoryIgnoringErrors(_ path: String) {
        _ = rmdir(path)
    }

    /// rename(2): atomic replacement of `destination` within one filesystem.
    public static func rename(_ source: String, to destination: String) throws {
        guard Glibc.rename(source, destination) == 0 else {
            throw POSIXFailure.last("cannot move \(Path.name(of: source)) to \(destination)")
        }
    }

    /// statvfs(2): the bytes an unprivileged writer may still use on the filesystem of `path`, nil if unknown.
    public static func availableBytes(_ path: String) -> Int? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// chmod(2).
    public static func setMode(_ path: String, _ mode: mode_t) throws {
        guard chmod(path, mode) == 0 else { throw POSIXFailure.last("cannot set the mode of \(path) to \(String(mode, radix: 8))") }
    }

    /// chmod(2), best effort: used where the mode is a tightening, not a precondition.
    public static func setModeIgnoringErrors(_ path: String, _ mode: mode_t) {
        _ = chmod(path, mode)
    }
}
