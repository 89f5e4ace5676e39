import Foundation
import ChpkiBase

/// One member of a tar archive, with the owner and group by name (as `tar -xp` restores them on
/// the target host) and the mode.
public struct TarEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file(Data)
        /// A file holding a private key: written from its wiped buffer, never copied into a `Data`.
        /// Only written; `Tar.read` gives `.file`.
        case secret(SecretBytes)
        case directory
    }

    /// Relative path, `/`-separated, no `..`, no leading `/`.
    public var path: String
    public var kind: Kind
    public var mode: UInt16
    public var owner: String
    public var group: String
    public var modified: Date

    public init(path: String, kind: Kind, mode: UInt16, owner: String = "root", group: String = "root",
                modified: Date = Date(timeIntervalSince1970: 0)) {
        self.path = path
        self.kind = kind
        self.mode = mode
        self.owner = owner
        self.group = group
        self.modified = modified
    }

    /// A file's bytes (for a `.secret` member, a copy that nothing wipes: readers never see one).
    public var data: Data? {
        switch kind {
        case let .file(data): return data
        case let .secret(bytes): return bytes.data
        case .directory: return nil
        }
    }

    /// A file's size, 0 for a directory.
    var size: Int {
        switch kind {
        case let .file(data): return data.count
        case let .secret(bytes): return bytes.count
        case .directory: return 0
        }
    }

    /// A file's bytes, borrowed (nothing for a directory).
    func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        switch kind {
        case let .file(data): return try data.withUnsafeBytes(body)
        case let .secret(bytes): return try bytes.withBytes(body)
        case .directory: return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }
}

/// POSIX ustar archives: what GNU tar and bsdtar read everywhere. Written and read here because
/// chpki needs owner names and modes kept exactly and every member checked on the way in.
public enum Tar {
    static let block = 512

    public static func archive(_ entries: [TarEntry]) throws -> Data {
        var out = Data(count: try size(of: entries))
        _ = try out.withUnsafeMutableBytes { try write(entries, into: $0) }
        return out
    }

    /// The same bytes in wiped memory, for archives that hold private keys: the buffer is sized
    /// once, so no copy is left behind by a regrowth, and it is wiped when released.
    public static func secretArchive(_ entries: [TarEntry]) throws -> SecretBytes {
        let size = try size(of: entries)
        return try SecretBytes(capacity: size) { try write(entries, into: $0) }
    }

    /// The archive's length: a header per member, each file padded to whole blocks, two zero blocks.
    private static func size(of entries: [TarEntry]) throws -> Int {
        var total = block * 2
        for entry in entries {
            try checkPath(entry.path)
            total += block
            if case .directory = entry.kind { continue }
            guard let padded = entry.size.roundedUp(to: block) else { throw ChpkiError(.archiveTooLarge, "tar: \(entry.path) is too large") }
            total += padded
        }
        return total
    }

    /// Writes the archive of `entries` into `out`, which is exactly `size(of: entries)` bytes and
    /// zeroed (padding and the end blocks are left as they are); returns the length written.
    @discardableResult
    private static func write(_ entries: [TarEntry], into out: UnsafeMutableRawBufferPointer) throws -> Int {
        var offset = 0
        for entry in entries {
            try header(entry).withUnsafeBytes { header in
                UnsafeMutableRawBufferPointer(rebasing: out[offset..<offset + block]).copyMemory(from: header)
            }
            offset += block
            if case .directory = entry.kind { continue }
            entry.withBytes { bytes in
                if !bytes.isEmpty { UnsafeMutableRawBufferPointer(rebasing: out[offset..<offset + bytes.count]).copyMemory(from: bytes) }
            }
            offset += entry.size.roundedUp(to: block)!
        }
        precondition(offset + 2 * block == out.count, "tar: the archive's size was miscounted")
        return out.count
    }

    /// How much a reader accepts: one member's size and the whole archive's, checked before any
    /// byte is copied. The writers of secret bundles check the same values (`SecretBundleLimits`).
    public struct Limits: Sendable, Equatable {
        public var memberSize: Int
        public var archiveSize: Int

        public init(memberSize: Int, archiveSize: Int) {
            self.memberSize = memberSize
            self.archiveSize = archiveSize
        }

        /// For archives chpki reads back in its own tests and tools.
        public static let unlimited = Limits(memberSize: Int.max / 2, archiveSize: Int.max / 2)
    }

    /// Every member of `data`. Refuses (never traps on) anything but a plain ustar archive of
    /// regular files and directories: a bad checksum, a numeric field that is not plain octal
    /// (signed, base-256, too large), links, devices, fifos, pax and GNU extension headers, an
    /// absolute or `..` path, an empty or `.` component, bytes after a NUL in a name, a duplicate
    /// member, a member or archive over `limits`, a truncated archive, and anything but zeros after
    /// the end-of-archive blocks.
    public static func read(_ data: Data, limits: Limits = .unlimited) throws -> [TarEntry] {
        guard data.count <= limits.archiveSize else {
            throw ChpkiError(.archiveTooLarge, "tar: the archive is \(data.count) bytes, more than the \(limits.archiveSize) allowed")
        }
        let bytes = [UInt8](data)
        var offset = 0
        var entries: [TarEntry] = []
        var seen: Set<String> = []
        while true {
            guard bytes.count - offset >= block else { throw ChpkiError(.archiveTruncated, "tar: the archive is truncated (no end-of-archive blocks)") }
            let header = bytes[offset..<offset + block]
            if header.allSatisfy({ $0 == 0 }) {
                // End of archive: two zero blocks, then only the zero padding of the last record.
                guard bytes.count - offset >= 2 * block else { throw ChpkiError(.archiveTruncated, "tar: the archive is truncated (one end-of-archive block of two)") }
                guard bytes[(offset + block)...].allSatisfy({ $0 == 0 }) else {
                    throw ChpkiError(.archiveCorrupt, "tar: data after the end-of-archive blocks at offset \(offset)")
                }
                return entries
            }
            let (entry, size) = try member(header, at: offset)
            offset += block
            guard size <= limits.memberSize else {
                throw ChpkiError(.archiveTooLarge, "tar: \(entry.path) is \(size) bytes, more than the \(limits.memberSize) allowed")
            }
            guard seen.insert(entry.path).inserted else { throw ChpkiError(.archiveDuplicateMember, "tar: \(entry.path) appears twice in the archive") }
            guard case .file = entry.kind else {
                entries.append(entry)
                continue
            }
            // The bytes follow the header, padded to a whole block.
            guard let padded = size.roundedUp(to: block), bytes.count - offset >= padded else {
                throw ChpkiError(.archiveTruncated, "tar: the archive is truncated in \(entry.path)")
            }
            var complete = entry
            complete.kind = .file(Data(bytes[offset..<offset + size]))
            entries.append(complete)
            offset += padded
        }
    }

    /// One header, checked, and the size of the member's data (a file's `kind` holds no bytes yet).
    private static func member(_ header: ArraySlice<UInt8>, at offset: Int) throws -> (TarEntry, size: Int) {
        let base = header.startIndex
        func field(_ start: Int, _ width: Int) -> ArraySlice<UInt8> { header[(base + start)..<(base + start + width)] }
        let storedChecksum = try number(field(148, 8), name: "checksum", at: offset)
        var computed = 0
        for (index, byte) in header.enumerated() { computed += (148..<156).contains(index) ? 32 : Int(byte) }
        guard storedChecksum == computed else { throw ChpkiError(.archiveCorrupt, "tar: bad header checksum at offset \(offset)") }
        let magic = Array(field(257, 8))
        guard magic == Array("ustar\u{0}00".utf8) || magic == Array("ustar  \u{0}".utf8) else {
            throw ChpkiError(.archiveCorrupt, "tar: the header at offset \(offset) is not ustar")
        }
        let name = try text(field(0, 100), what: "name", at: offset)
        let prefix = try text(field(345, 155), what: "name prefix", at: offset)
        var path = prefix.isEmpty ? name : prefix + "/" + name
        let type = header[base + 156]
        let isDirectory = type == UInt8(ascii: "5")
        guard type == UInt8(ascii: "0") || type == 0 || isDirectory else {
            let printable = (0x21...0x7E).contains(type) ? String(UnicodeScalar(type)) : String(format: "0x%02x", type)
            throw ChpkiError(.archiveUnsafeMember, "tar: \(path.isEmpty ? "member at offset \(offset)" : path) has type '\(printable)': only regular files and directories are accepted (links, devices, fifos and extension headers are refused)")
        }
        if isDirectory && path.hasSuffix("/") { path.removeLast() }
        try checkMemberPath(path)
        guard try text(field(157, 100), what: "link name", at: offset).isEmpty else {
            throw ChpkiError(.archiveUnsafeMember, "tar: \(path) carries a link name")
        }
        let mode = try number(field(100, 8), name: "mode", at: offset, path: path)
        guard mode <= 0o7777 else { throw ChpkiError(.archiveCorrupt, "tar: \(path): mode \(String(mode, radix: 8)) is out of range") }
        _ = try number(field(108, 8), name: "uid", at: offset, path: path, allowEmpty: true)
        _ = try number(field(116, 8), name: "gid", at: offset, path: path, allowEmpty: true)
        let size = try number(field(124, 12), name: "size", at: offset, path: path)
        let mtime = try number(field(136, 12), name: "mtime", at: offset, path: path, allowEmpty: true)
        guard !isDirectory || size == 0 else { throw ChpkiError(.archiveCorrupt, "tar: directory \(path) has a size") }
        let owner = try text(field(265, 32), what: "owner name", at: offset)
        let group = try text(field(297, 32), what: "group name", at: offset)
        let entry = TarEntry(path: path, kind: isDirectory ? .directory : .file(Data()), mode: UInt16(mode),
                             owner: owner, group: group, modified: Date(timeIntervalSince1970: TimeInterval(mtime)))
        return (entry, size)
    }

    /// A member path: relative, `/`-separated, no empty, `.` or `..` component, no NUL.
    static func checkMemberPath(_ path: String) throws {
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\0"),
              !components.contains(where: { $0.isEmpty || $0 == ".." || $0 == "." }) else {
            throw ChpkiError(.archiveUnsafeMember, "tar: unsafe member path '\(path)'")
        }
    }

    /// A plain octal field: optional leading spaces, octal digits, then NULs or spaces only. A
    /// sign, base-256 (high bit set), any other byte, or a value past 2^40 is refused: no
    /// archive chpki reads needs more, and no arithmetic on it can overflow.
    private static func number(_ field: ArraySlice<UInt8>, name: String, at offset: Int, path: String? = nil,
                               allowEmpty: Bool = false) throws -> Int {
        let location = path ?? "the header at offset \(offset)"
        if let first = field.first, first & 0x80 != 0 {
            throw ChpkiError(.archiveCorrupt, "tar: \(location): \(name) is base-256 encoded; only octal is accepted")
        }
        var index = field.startIndex
        while index < field.endIndex && field[index] == 32 { index += 1 }
        var value = 0
        var digits = 0
        while index < field.endIndex, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(field[index]) {
            value = value * 8 + Int(field[index] - UInt8(ascii: "0"))
            digits += 1
            guard value < 1 << 40 else { throw ChpkiError(.archiveCorrupt, "tar: \(location): \(name) is out of range") }
            index += 1
        }
        guard field[index...].allSatisfy({ $0 == 0 || $0 == 32 }) else {
            throw ChpkiError(.archiveCorrupt, "tar: \(location): \(name) is not an octal number")
        }
        guard digits > 0 || allowEmpty else { throw ChpkiError(.archiveCorrupt, "tar: \(location): \(name) is empty") }
        return value
    }

    /// A NUL-terminated UTF-8 field; anything but NULs after the terminator is refused.
    private static func text(_ field: ArraySlice<UInt8>, what: String, at offset: Int) throws -> String {
        let end = field.firstIndex(of: 0) ?? field.endIndex
        guard field[end...].allSatisfy({ $0 == 0 }) else {
            throw ChpkiError(.archiveCorrupt, "tar: the \(what) at offset \(offset) has bytes after a NUL")
        }
        guard let value = String(validating: field[..<end], as: UTF8.self) else {
            throw ChpkiError(.archiveCorrupt, "tar: the \(what) at offset \(offset) is not UTF-8")
        }
        return value
    }

    /// Relative, no `..` component, no NUL: a member can never land outside the target root.
    static func checkPath(_ path: String) throws {
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\0"),
              !components.contains(where: { $0 == ".." || $0 == "." }) else {
            throw ChpkiError(.archiveUnsafeMember, "tar: unsafe member path '\(path)'")
        }
    }

    static func header(_ entry: TarEntry) throws -> Data {
        var header = [UInt8](repeating: 0, count: block)
        let path = entry.kind == .directory ? entry.path + "/" : entry.path
        var name = Array(path.utf8), prefix: [UInt8] = []
        if name.count > 100 {
            // ustar splits a long path at a '/' into a 155-byte prefix and a 100-byte name.
            guard let split = name.indices.last(where: { name[$0] == UInt8(ascii: "/") && $0 <= 155 && name.count - $0 - 1 <= 100 }) else {
                throw ChpkiError(.archivePathTooLong, "tar: path too long for ustar: \(entry.path)")
            }
            prefix = Array(name[..<split])
            name = Array(name[(split + 1)...])
        }
        func put(_ bytes: [UInt8], at offset: Int, width: Int) { for (index, byte) in bytes.prefix(width).enumerated() { header[offset + index] = byte } }
        func putOctal(_ value: Int, at offset: Int, width: Int) {
            put(Array(String(String(value, radix: 8).suffix(width - 1)).leftPadded(to: width - 1).utf8), at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        putOctal(Int(entry.mode), at: 100, width: 8)
        putOctal(0, at: 108, width: 8)
        putOctal(0, at: 116, width: 8)
        putOctal(entry.size, at: 124, width: 12)
        putOctal(Int(entry.modified.timeIntervalSince1970), at: 136, width: 12)
        header[156] = entry.kind == .directory ? UInt8(ascii: "5") : UInt8(ascii: "0")
        put(Array("ustar\0".utf8), at: 257, width: 6)
        put(Array("00".utf8), at: 263, width: 2)
        put(Array(entry.owner.utf8), at: 265, width: 32)
        put(Array(entry.group.utf8), at: 297, width: 32)
        put(prefix, at: 345, width: 155)
        put(Array(repeating: 32, count: 8), at: 148, width: 8)
        let checksum = header.reduce(0) { $0 + Int($1) }
        put(Array(String(String(checksum, radix: 8)).leftPadded(to: 6).utf8) + [0, 32], at: 148, width: 8)
        return Data(header)
    }

}

private extension Int {
    /// Rounded up to a multiple of `unit`, or nil on overflow.
    func roundedUp(to unit: Int) -> Int? {
        let (sum, overflow) = addingReportingOverflow(unit - 1)
        return overflow ? nil : sum / unit * unit
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
