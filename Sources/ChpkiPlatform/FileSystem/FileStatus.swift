import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ChpkiBase

/// What stat(2) says about a path, plus owner and group by name.
public struct FileStatus: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case regular, directory, symlink, other }

    public var kind: Kind
    public var mode: UInt16
    public var uid: uid_t
    public var gid: gid_t
    public var size: Int
    public var modified: Date

    /// nil when nothing is there (ENOENT, or a parent that is not a directory); throws other errors.
    /// `followLinks: false` reports a symlink itself (lstat).
    public static func of(_ path: String, followLinks: Bool = true) throws -> FileStatus? {
        var info = stat()
        let result = followLinks ? stat(path, &info) : lstat(path, &info)
        guard result == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw POSIXFailure.last("cannot stat \(path)")
        }
        return FileStatus(info)
    }

    init(_ info: stat) {
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        default: kind = .other
        }
        mode = UInt16(info.st_mode & 0o7777)
        uid = info.st_uid
        gid = info.st_gid
        size = Int(info.st_size)
        modified = Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec))
    }

    public var owner: String { Accounts.userName(uid) }
    public var group: String { Accounts.groupName(gid) }
}

/// User and group names <-> ids through the system's databases (NSS).
public enum Accounts {
    public static func userName(_ uid: uid_t) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return String(uid) }
        return String(cString: name)
    }

    public static func groupName(_ gid: gid_t) -> String {
        guard let entry = getgrgid(gid), let name = entry.pointee.gr_name else { return String(gid) }
        return String(cString: name)
    }

    public static func userID(_ name: String) -> uid_t? {
        getpwnam(name).map { $0.pointee.pw_uid }
    }

    public static func groupID(_ name: String) -> gid_t? {
        getgrnam(name).map { $0.pointee.gr_gid }
    }

    public static var isRoot: Bool { geteuid() == 0 }
}

/// Reading a whole regular file, at most a given size, with the metadata of the same open file.
public enum RegularFile {
    public enum Failure: Error, Sendable {
        case missing
        case notRegular(FileStatus.Kind)
        case unreadable(String)
        /// Larger than the limit (`size` when the file said so up front): nothing was read.
        case tooLarge(size: Int?, limit: Int)

        /// One line for the operator (`ReadLimits.tooLarge` for an oversized file).
        public var reason: String {
            switch self {
            case .missing: return "no such file"
            case let .notRegular(kind): return kind == .directory ? "is a directory" : "not a regular file"
            case let .unreadable(reason): return "cannot read: \(reason)"
            case let .tooLarge(size, limit): return ReadLimits.tooLarge(size: size, limit: limit)
            }
        }
    }

    /// The file at `path` (followed through symlinks), refused past `limit` bytes (a `ReadLimits`
    /// constant) before anything is read: every read of a file chpki didn't write is bounded.
    public static func read(_ path: String, limit: Int) -> Result<(Data, FileStatus), Failure> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR { return .failure(.missing) }
            return .failure(.unreadable(String(cString: strerror(code))))
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return .failure(.unreadable(String(cString: strerror(errno)))) }
        let status = FileStatus(info)
        guard status.kind == .regular else { return .failure(.notRegular(status.kind)) }
        switch read(open: descriptor, status: status, limit: limit) {
        case let .success(data): return .success((data, status))
        case let .failure(failure): return .failure(failure)
        }
    }

    /// The contents of `path`, or nil when it is missing, not a regular file, unreadable or larger
    /// than `limit`: the bounded stand-in for `FileManager.contents(atPath:)`.
    public static func contents(_ path: String, limit: Int) -> Data? {
        guard case let .success((data, _)) = read(path, limit: limit) else { return nil }
        return data
    }

    /// The status of the regular file at `path` (followed through symlinks) when it holds exactly
    /// `expected`, else nil: a file of another size is not read at all, and one of the same size is
    /// read into wiped memory (`SecretBytes`), so comparing an old key file leaves no copy of it.
    public static func status(_ path: String, ifHolding expected: UnsafeRawBufferPointer) -> FileStatus? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        let status = FileStatus(info)
        guard status.kind == .regular, status.size == expected.count else { return nil }
        // One byte more than expected: a file that grew since fstat does not match.
        guard let old = try? SecretBytes(capacity: expected.count + 1, filling: { buffer in
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.read(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { throw POSIXFailure.last("cannot read \(path)") }
                if count == 0 { break }
                offset += count
            }
            return offset
        }) else { return nil }
        let same = old.withBytes { $0.count == expected.count && (expected.isEmpty || memcmp($0.baseAddress!, expected.baseAddress!, expected.count) == 0) }
        return same ? status : nil
    }

    /// The rest of an open regular file whose fstat is `status`: its size is checked first, and
    /// the read stops at `limit` too (a file may grow while it is read).
    static func read(open descriptor: CInt, status: FileStatus, limit: Int) -> Result<Data, Failure> {
        guard status.size <= limit else { return .failure(.tooLarge(size: status.size, limit: limit)) }
        switch readToEnd(descriptor, limit: limit) {
        case let .data(data): return .success(data)
        case let .failed(code): return .failure(.unreadable(String(cString: strerror(code))))
        case .tooLarge: return .failure(.tooLarge(size: nil, limit: limit))
        }
    }

    public enum ReadOutcome: Sendable {
        case data(Data)
        /// read(2) failed with this errno.
        case failed(Int32)
        /// More than the limit: reading stopped there.
        case tooLarge
    }

    /// Everything left to read from `descriptor`, at most `limit` bytes (EINTR retried): the one
    /// read loop of the package.
    static func readToEnd(_ descriptor: CInt, limit: Int) -> ReadOutcome {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failed(errno)
            }
            if count == 0 { return .data(data) }
            guard data.count <= limit - count else { return .tooLarge }
            data.append(contentsOf: buffer[..<count])
        }
    }
}

extension RegularFile.Failure {
    /// The code of each way a file cannot be read.
    public var code: ChpkiError.Code {
        switch self {
        case .missing: return .fileMissing
        case .notRegular: return .fileNotRegular
        case .unreadable: return .fileUnreadable
        case .tooLarge: return .fileTooLarge
        }
    }
}
