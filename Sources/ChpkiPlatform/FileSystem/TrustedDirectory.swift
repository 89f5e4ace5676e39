import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ChpkiBase

/// A directory whose files chpki takes as its own code-like input (template overrides, SPEC §8):
/// the directory and every file read from it must be owned by root or by the user chpki runs as,
/// and writable by no one else. Anyone else who could write there could change what chpki ships
/// to every host. The checks are fstat(2) on the very descriptors the bytes are read from (opened
/// with O_NOFOLLOW, the files through openat on the directory's descriptor), so nothing can be
/// swapped between the check and the read.
public enum TrustedDirectory {
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var reason: String
        /// True when the owner or mode is what is wrong (not a symlink, size or I/O error).
        public var untrusted = false
        /// What the operator would do about it: an untrusted owner, mode or symlink is
        /// `template.untrusted`; a file too large or unreadable says so.
        public var code: ChpkiError.Code = .templateUntrusted
        public var description: String { "\(path): \(reason)" }
    }

    public struct File: Sendable {
        public var name: String
        public var path: String
        public var data: Data
    }

    /// Every regular file of `directory` whose name `include` accepts (sorted by name), each at
    /// most `limit` bytes; subdirectories are skipped. Refuses a symlink (the directory itself or
    /// a file), a file that is neither regular nor a directory, and anything `problem(_:)` names.
    public static func read(_ directory: String, include: (String) -> Bool, limit: Int) throws -> [File] {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ELOOP || (code == ENOTDIR && (try? FileStatus.of(directory, followLinks: false))??.kind == .symlink) {
                throw Refusal(path: directory, reason: "is a symlink; name the directory itself")
            }
            throw Refusal(path: directory, reason: "cannot open the directory: \(String(cString: strerror(code)))", code: .fileUnreadable)
        }
        defer { close(descriptor) }
        try check(descriptor, directory)
        var files: [File] = []
        for name in try names(descriptor, directory).filter(include) {
            let path = Path.join(directory, name)
            let file = openat(descriptor, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard file >= 0 else {
                let code = errno
                if code == ELOOP { throw Refusal(path: path, reason: "is a symlink; chpki reads only regular files here") }
                if code == ENOENT { continue }
                throw Refusal(path: path, reason: "cannot open: \(String(cString: strerror(code)))", code: .fileUnreadable)
            }
            defer { close(file) }
            let status = try check(file, path)
            if status.kind == .directory { continue }
            guard status.kind == .regular else { throw Refusal(path: path, reason: "not a regular file", code: .fileNotRegular) }
            switch RegularFile.read(open: file, status: status, limit: limit) {
            case let .success(data): files.append(File(name: name, path: path, data: data))
            case let .failure(failure): throw Refusal(path: path, reason: failure.reason, code: failure.code)
            }
        }
        return files
    }

    /// Why a file or directory with this status may not be trusted (`OwnershipRule`), or nil.
    public static func problem(_ status: FileStatus) -> String? {
        let me = geteuid()
        let problems = OwnershipRule.violations(status).map { violation in
            switch violation {
            case .foreignOwner: "owned by neither root nor \(me == 0 ? "root" : Accounts.userName(me)), the user chpki runs as"
            case .writableByOthers: "group/other-writable"
            }
        }
        guard !problems.isEmpty else { return nil }
        return "owner \(status.owner), mode \(ModeText.format(status.mode)): " + problems.joined(separator: " and ")
    }

    @discardableResult
    private static func check(_ descriptor: CInt, _ path: String) throws -> FileStatus {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw Refusal(path: path, reason: "cannot stat: \(String(cString: strerror(errno)))", code: .fileUnreadable) }
        let status = FileStatus(info)
        if let problem = problem(status) { throw Refusal(path: path, reason: problem, untrusted: true) }
        return status
    }

    /// The entry names of the open directory (not `.` and `..`), sorted.
    private static func names(_ descriptor: CInt, _ path: String) throws -> [String] {
        let copy = dup(descriptor)
        guard copy >= 0, let stream = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw Refusal(path: path, reason: "cannot list the directory: \(String(cString: strerror(errno)))", code: .fileUnreadable)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}
