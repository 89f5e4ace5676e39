import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ChpkiBase

/// Writes that never leave a half-written file: a temporary file in the same directory, fsync,
/// chmod, rename over the target, fsync the directory (SPEC §6, "every write is atomic").
public enum AtomicFile {
    /// `owner`/`group`, when given, are set on the temporary file before the rename, so the file
    /// never appears under its name with the wrong owner.
    public static func write(_ data: Data, to path: String, mode: mode_t = 0o600, owner: uid_t? = nil, group: gid_t? = nil) throws {
        let directory = Path.parent(of: path)
        let name = Path.name(of: path)
        var template = Array("\(directory)/.\(name).tmp-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { throw POSIXFailure.last("cannot create a temporary file next to \(path)") }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var renamed = false
        defer {
            if !renamed { unlink(temporary) }
        }
        do {
            defer { close(descriptor) }
            try writeAll(descriptor, data, path: temporary)
            if owner != nil || group != nil {
                guard fchown(descriptor, owner ?? uid_t.max, group ?? gid_t.max) == 0 else {
                    throw POSIXFailure.last("cannot set the owner of \(temporary)")
                }
            }
            guard fchmod(descriptor, mode) == 0 else { throw POSIXFailure.last("cannot set mode of \(temporary)") }
            guard fsync(descriptor) == 0 else { throw POSIXFailure.last("cannot fsync \(temporary)") }
        }
        guard rename(temporary, path) == 0 else { throw POSIXFailure.last("cannot rename \(temporary) to \(path)") }
        renamed = true
        syncDirectory(directory)
    }

    /// Flushes a file written by other means (SQLite) to disk.
    public static func syncFile(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw POSIXFailure.last("cannot open \(path)") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw POSIXFailure.last("cannot fsync \(path)") }
    }

    /// Writes raw bytes (a secret held in `SecretBytes`) atomically, without an intermediate Data copy.
    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String, mode: mode_t = 0o600) throws {
        var data = Data(bytes)
        defer { data.withUnsafeMutableBytes { SecureMemory.cleanse($0) } }
        try write(data, to: path, mode: mode)
    }

    /// Makes a rename inside `directory` durable.
    public static func syncDirectory(_ directory: String) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    /// Writes all of `data` to `descriptor`, retrying short writes and EINTR; shared with FreshTree.
    static func writeAll(_ descriptor: Int32, _ data: Data, path: String) throws {
        try data.withUnsafeBytes { try writeAll(descriptor, $0, path: path) }
    }

    static func writeAll(_ descriptor: Int32, _ raw: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < raw.count {
            let written = Glibc.write(descriptor, raw.baseAddress! + offset, raw.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw POSIXFailure.last("cannot write \(path)")
            }
            offset += written
        }
    }
}

/// A failed system call, worded for the operator: what chpki tried, and strerror.
public struct POSIXFailure: Error, CustomStringConvertible, Sendable {
    public let message: String
    public let code: Int32

    public static func last(_ what: String) -> POSIXFailure {
        let code = errno
        return POSIXFailure(message: "\(what): \(String(cString: strerror(code)))", code: code)
    }

    public var description: String { message }

    /// strerror of the code alone ("No space left on device"), for messages that name the file themselves.
    public var reason: String { String(cString: strerror(code)) }
}
