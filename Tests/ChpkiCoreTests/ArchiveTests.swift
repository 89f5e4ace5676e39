import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA
@testable import ChpkiPlatform

@Suite("tar and gzip")
struct ArchiveTests {
    static let entries = [
        TarEntry(path: "etc", kind: .directory, mode: 0o755),
        TarEntry(path: "etc/opensearch", kind: .directory, mode: 0o750, owner: "opensearch", group: "opensearch"),
        TarEntry(path: "etc/opensearch/private.key", kind: .file(Data("secret\n".utf8)), mode: 0o600, owner: "opensearch", group: "opensearch",
                 modified: Date(timeIntervalSince1970: 1_800_000_000)),
        TarEntry(path: String(repeating: "d", count: 90) + "/" + String(repeating: "f", count: 60) + ".pem",
                 kind: .file(Data(repeating: 0x41, count: 1500)), mode: 0o644),
    ]


    @Test("GNU tar lists and extracts what chpki writes, owners and modes included")
    func gnuTarReadsOurs() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chpki-tar-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Gzip.compress(try Tar.archive(Self.entries)).write(to: directory.appendingPathComponent("a.tar.gz"))
        let listing = try runTool(["tar", "-tvzf", "a.tar.gz"], in: directory)
        #expect(listing.contains("-rw------- opensearch/opensearch 7 2027-01-15 08:00 etc/opensearch/private.key"), "\(listing)")
        #expect(listing.contains("drwxr-x--- opensearch/opensearch"))
        _ = try runTool(["mkdir", "x"], in: directory)
        _ = try runTool(["tar", "-xzpf", "a.tar.gz", "-C", "x"], in: directory)
        let extracted = directory.appendingPathComponent("x/etc/opensearch/private.key")
        #expect(try Data(contentsOf: extracted) == Data("secret\n".utf8))
        let mode = try FileManager.default.attributesOfItem(atPath: extracted.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try Data(contentsOf: directory.appendingPathComponent("x/" + Self.entries[3].path)).count == 1500)
    }

    @Test("chpki reads what GNU tar writes, and round-trips its own")
    func roundTrip() throws {
        #expect(try Tar.read(Gzip.decompress(Gzip.compress(Tar.archive(Self.entries)))) == Self.entries)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chpki-tar-\(UUID())")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("in/sub"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("hello".utf8).write(to: directory.appendingPathComponent("in/sub/file.txt"))
        _ = try runTool(["tar", "--format=ustar", "-czf", "g.tar.gz", "in"], in: directory)
        let entries = try Tar.read(try Gzip.decompress(try Data(contentsOf: directory.appendingPathComponent("g.tar.gz"))))
        #expect(entries.first { $0.path == "in/sub/file.txt" }?.data == Data("hello".utf8))
    }

    @Test("unsafe, truncated and corrupt archives are refused", arguments: ["../etc/passwd", "/etc/passwd", "a/../../b", "./a"])
    func unsafePaths(path: String) {
        #expect(throws: ChpkiError(.archiveUnsafeMember, "")) { try Tar.archive([TarEntry(path: path, kind: .file(Data()), mode: 0o644)]) }
    }

    @Test("truncation and corruption are errors, not partial reads")
    func damaged() throws {
        let archive = try Tar.archive(Self.entries)
        // ChpkiError equality is on the code alone: these assert the code, not the wording.
        #expect(throws: ChpkiError(.archiveTruncated, "")) { try Tar.read(archive.prefix(700)) }
        var corrupt = archive
        corrupt[10] ^= 0xFF
        #expect(throws: ChpkiError(.archiveCorrupt, "")) { try Tar.read(corrupt) }
        let compressed = try Gzip.compress(archive)
        #expect(throws: ChpkiError(.archiveTruncated, "")) { try Gzip.decompress(compressed.prefix(compressed.count / 2)) }
    }

    // MARK: - hostile input: every case is a ChpkiError naming the problem, never a trap

    /// One ustar header block with `edit` applied to its bytes; the checksum is recomputed after
    /// the edit unless `fixChecksum` is false.
    static func header(_ path: String = "a.txt", size: Int = 0, type: UInt8 = UInt8(ascii: "0"), fixChecksum: Bool = true,
                       edit: (inout [UInt8]) -> Void = { _ in }) throws -> [UInt8] {
        let entry = TarEntry(path: path, kind: type == UInt8(ascii: "5") ? .directory : .file(Data(count: size)), mode: 0o644)
        var block = [UInt8](try Tar.header(entry))
        block[156] = type
        edit(&block)
        if fixChecksum {
            for index in 148..<156 { block[index] = 32 }
            let sum = block.reduce(0) { $0 + Int($1) }
            let digits = Array(String(sum, radix: 8).utf8)
            for index in 148..<156 { block[index] = 0 }
            for (offset, digit) in (Array(repeating: UInt8(ascii: "0"), count: 6 - digits.count) + digits).enumerated() { block[148 + offset] = digit }
            block[155] = 32
        }
        return block
    }

    static func archive(_ headers: [[UInt8]], data: [UInt8] = [], end: Int = 1024) -> Data {
        Data(headers.joined()) + Data(data) + Data(count: end)
    }

    static func refusal(_ data: Data, limits: Tar.Limits = .unlimited) -> String? {
        do {
            _ = try Tar.read(data, limits: limits)
            return nil
        } catch let error as ChpkiError {
            return error.message
        } catch {
            return "unexpected \(error)"
        }
    }

    static func put(_ text: [UInt8], at offset: Int, width: Int, in block: inout [UInt8]) {
        for index in 0..<width { block[offset + index] = index < text.count ? text[index] : 0 }
    }

    @Test("size fields that are not plain octal are refused", arguments: [
        (Array("-0000000001".utf8) + [0], "not an octal"),
        ([0x80] + Array(repeating: 0, count: 3) + [0, 0, 0, 2, 0, 0, 0, 0], "base-256"),
        (Array(repeating: 0xFF, count: 12), "base-256"),
        (Array("77777777777".utf8) + [0], "more than"),
        (Array("777777777777".utf8), "more than"),
        (Array("00000000009".utf8) + [0], "not an octal"),
        (Array("0000000 1".utf8) + [0, 0, 0], "not an octal"),
        (Array(repeating: 0, count: 12), "empty"),
    ] as [([UInt8], String)])
    func badSize(field: [UInt8], expected: String) throws {
        let block = try Self.header(size: 1) { Self.put(field, at: 124, width: 12, in: &$0) }
        let message = Self.refusal(Self.archive([block], data: Array(repeating: 0x41, count: 512)), limits: Tar.Limits(memberSize: 1 << 20, archiveSize: 1 << 22))
        #expect(message?.contains(expected) == true, "\(message ?? "accepted")")
    }

    @Test("member types other than file and directory are refused", arguments: Array("1234679xgLKSV".utf8))
    func badTypes(type: UInt8) throws {
        let message = Self.refusal(Self.archive([try Self.header(type: type)]))
        #expect(message?.contains("only regular files and directories") == true, "\(message ?? "accepted")")
    }

    @Test("unsafe member paths are refused on read", arguments: ["/etc/passwd", "../x", "a/../../b", "./a", "a//b", "a/./b"])
    func unsafeRead(path: String) throws {
        let block = try Self.header { Self.put(Array(path.utf8), at: 0, width: 100, in: &$0) }
        let message = Self.refusal(Self.archive([block]))
        #expect(message?.contains("unsafe member path") == true, "\(message ?? "accepted")")
    }

    @Test("a NUL inside a name, a bad checksum, a missing ustar magic, a link name are refused")
    func badHeaders() throws {
        let nul = try Self.header { Self.put(Array("a.txt".utf8) + [0] + Array("/../evil".utf8), at: 0, width: 100, in: &$0) }
        #expect(Self.refusal(Self.archive([nul]))?.contains("after a NUL") == true)
        let checksum = try Self.header(fixChecksum: false) { $0[0] ^= 1 }
        #expect(Self.refusal(Self.archive([checksum]))?.contains("checksum") == true)
        let magic = try Self.header { Self.put([], at: 257, width: 8, in: &$0) }
        #expect(Self.refusal(Self.archive([magic]))?.contains("not ustar") == true)
        let link = try Self.header { Self.put(Array("/etc/shadow".utf8), at: 157, width: 100, in: &$0) }
        #expect(Self.refusal(Self.archive([link]))?.contains("link name") == true)
        let negativeMode = try Self.header { Self.put(Array("-000644".utf8) + [0], at: 100, width: 8, in: &$0) }
        #expect(Self.refusal(Self.archive([negativeMode]))?.contains("mode") == true)
        let directoryWithSize = try Self.header("d", type: UInt8(ascii: "5")) { Self.put(Array("00000000001".utf8) + [0], at: 124, width: 12, in: &$0) }
        #expect(Self.refusal(Self.archive([directoryWithSize], data: Array(repeating: 0, count: 512)))?.contains("has a size") == true)
    }

    @Test("duplicates, trailing garbage, missing end blocks and short members are refused")
    func structure() throws {
        let empty = try Self.header()
        #expect(Self.refusal(Self.archive([empty, empty]))?.contains("twice") == true)
        var garbage = Self.archive([empty])
        garbage.append(contentsOf: Array("x".utf8))
        #expect(Self.refusal(garbage)?.contains("after the end-of-archive") == true)
        #expect(Self.refusal(Self.archive([empty], end: 0))?.contains("truncated") == true)
        #expect(Self.refusal(Self.archive([empty], end: 512))?.contains("truncated") == true)
        let long = try Self.header(size: 4096)
        #expect(Self.refusal(Self.archive([long], data: Array(repeating: 0x41, count: 1000), end: 0))?.contains("truncated") == true)
        // Zero padding of the last record (as tar pads to 10240 bytes) is fine.
        #expect(Self.refusal(Self.archive([empty], end: 10240 - 512)) == nil)
    }

    @Test("member and archive limits are checked before any copy")
    func limits() throws {
        let limits = Tar.Limits(memberSize: 100, archiveSize: 4096)
        let big = try Self.header(size: 101)
        #expect(Self.refusal(Self.archive([big], data: Array(repeating: 0x41, count: 512)), limits: limits)?.contains("more than the 100") == true)
        #expect(Self.refusal(Data(count: 8192), limits: limits)?.contains("more than the 4096") == true)
    }

    @Test("random bytes and random edits of a good archive never trap")
    func noTraps() throws {
        var generator = SystemRandomNumberGenerator()
        let good = [UInt8](try Tar.archive(Self.entries))
        for round in 0..<2000 {
            var bytes = good
            for _ in 0..<(1 + round % 8) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                bytes[index] = UInt8.random(in: 0...255, using: &generator)
            }
            _ = try? Tar.read(Data(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator))), limits: SecretBundleLimits.tar)
        }
    }

    @Test("gzip: trailing bytes, a second member, corruption and a bomb are refused")
    func gzipEdges() throws {
        let compressed = try Gzip.compress(Data(repeating: 0, count: 4096))
        #expect(throws: ChpkiError.self) { try Gzip.decompress(compressed + Data("junk".utf8)) }
        #expect(throws: ChpkiError.self) { try Gzip.decompress(compressed + compressed) }
        var corrupt = compressed
        corrupt[corrupt.count / 2] ^= 0xFF
        corrupt[corrupt.count - 5] ^= 0xFF
        #expect(throws: ChpkiError.self) { try Gzip.decompress(corrupt) }
        #expect(throws: ChpkiError.self) { try Gzip.decompress(Data()) }
        let bomb = try Gzip.compress(Data(count: 4 << 20))
        do {
            _ = try Gzip.decompress(bomb, limit: 1 << 20)
            Issue.record("a bomb was decompressed")
        } catch let error as ChpkiError {
            #expect(error.message.contains("expands past"))
        }
        #expect(try Gzip.decompress(compressed) == Data(repeating: 0, count: 4096))
    }
}
