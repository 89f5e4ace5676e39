import Foundation
import Testing
@testable import ChpkiCore

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
        #expect(throws: ChpkiError.self) { try Tar.archive([TarEntry(path: path, kind: .file(Data()), mode: 0o644)]) }
    }

    @Test("truncation and corruption are errors, not partial reads")
    func damaged() throws {
        let archive = try Tar.archive(Self.entries)
        #expect(throws: ChpkiError.self) { try Tar.read(archive.prefix(700)) }
        var corrupt = archive
        corrupt[10] ^= 0xFF
        #expect(throws: ChpkiError.self) { try Tar.read(corrupt) }
        let compressed = try Gzip.compress(archive)
        #expect(throws: ChpkiError.self) { try Gzip.decompress(compressed.prefix(compressed.count / 2)) }
    }
}
