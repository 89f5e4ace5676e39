import Foundation

/// One member of a tar archive, with the owner and group by name (as `tar -xp` restores them on
/// the target host) and the mode.
public struct TarEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file(Data)
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

    public var data: Data? {
        if case let .file(data) = kind { return data }
        return nil
    }
}

/// POSIX ustar archives: what GNU tar and bsdtar read everywhere. Written and read here because
/// chpki needs owner names and modes kept exactly and every member checked on the way in.
public enum Tar {
    static let block = 512

    public static func archive(_ entries: [TarEntry]) throws -> Data {
        var out = Data()
        for entry in entries {
            try checkPath(entry.path)
            out.append(try header(entry))
            if let data = entry.data {
                out.append(data)
                out.append(Data(count: (block - data.count % block) % block))
            }
        }
        out.append(Data(count: block * 2))
        return out
    }

    /// Every member of `data`; refuses a bad checksum, a truncated archive, an unsafe path or a
    /// member that is neither a regular file nor a directory.
    public static func read(_ data: Data) throws -> [TarEntry] {
        let bytes = [UInt8](data)
        var offset = 0
        var entries: [TarEntry] = []
        while true {
            guard offset + block <= bytes.count else { throw ChpkiError(.refused, "tar: the archive is truncated") }
            let header = Array(bytes[offset..<offset + block])
            if header.allSatisfy({ $0 == 0 }) { return entries }
            guard let expected = octal(header[148..<156]),
                  expected == header.enumerated().reduce(0, { $0 + Int((148..<156).contains($1.offset) ? 32 : $1.element) }) else {
                throw ChpkiError(.refused, "tar: bad header checksum at offset \(offset)")
            }
            let name = string(header[0..<100])
            let prefix = string(header[345..<500])
            let path = prefix.isEmpty ? name : prefix + "/" + name
            try checkPath(path)
            guard let mode = octal(header[100..<108]), let size = octal(header[124..<136]), let mtime = octal(header[136..<148]) else {
                throw ChpkiError(.refused, "tar: bad numeric field in \(path)")
            }
            let owner = string(header[265..<297]), group = string(header[297..<329])
            offset += block
            switch header[156] {
            case UInt8(ascii: "0"), 0:
                guard offset + size <= bytes.count else { throw ChpkiError(.refused, "tar: the archive is truncated in \(path)") }
                entries.append(TarEntry(path: path, kind: .file(Data(bytes[offset..<offset + size])), mode: UInt16(mode & 0o7777),
                                        owner: owner, group: group, modified: Date(timeIntervalSince1970: TimeInterval(mtime))))
                offset += (size + block - 1) / block * block
            case UInt8(ascii: "5"):
                entries.append(TarEntry(path: path.hasSuffix("/") ? String(path.dropLast()) : path, kind: .directory,
                                        mode: UInt16(mode & 0o7777), owner: owner, group: group,
                                        modified: Date(timeIntervalSince1970: TimeInterval(mtime))))
            default:
                throw ChpkiError(.refused, "tar: \(path) is not a regular file or directory (links and devices are refused)")
            }
        }
    }

    /// Relative, no `..` component, no NUL: a member can never land outside the target root.
    static func checkPath(_ path: String) throws {
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\0"),
              !components.contains(where: { $0 == ".." || $0 == "." }) else {
            throw ChpkiError(.refused, "tar: unsafe member path '\(path)'")
        }
    }

    static func header(_ entry: TarEntry) throws -> Data {
        var header = [UInt8](repeating: 0, count: block)
        let path = entry.kind == .directory ? entry.path + "/" : entry.path
        var name = Array(path.utf8), prefix: [UInt8] = []
        if name.count > 100 {
            // ustar splits a long path at a '/' into a 155-byte prefix and a 100-byte name.
            guard let split = name.indices.last(where: { name[$0] == UInt8(ascii: "/") && $0 <= 155 && name.count - $0 - 1 <= 100 }) else {
                throw ChpkiError(.refused, "tar: path too long for ustar: \(entry.path)")
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
        putOctal(entry.data?.count ?? 0, at: 124, width: 12)
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

    /// Octal digits only: `Int(_:radix:)` alone would take a sign, and a size of `-1` would pass
    /// the bounds check and slice backwards.
    private static func octal(_ field: ArraySlice<UInt8>) -> Int? {
        let digits = field.drop(while: { $0 == 32 }).prefix(while: { $0 != 0 && $0 != 32 })
        guard digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) }) else { return nil }
        return digits.isEmpty ? 0 : Int(String(decoding: digits, as: UTF8.self), radix: 8)
    }

    private static func string(_ field: ArraySlice<UInt8>) -> String {
        String(decoding: field.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
