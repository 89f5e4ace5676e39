import Foundation
import Testing
@testable import ChpkiBase
@testable import ChpkiCore
@testable import ChpkiBundles
@testable import ChpkiPlatform

/// Private keys live in `SecretBytes` from the CA to the file written (issue 19): the type wipes
/// its whole allocation when released, and the bundle path writes the same bytes as before.
@Suite("wiped key buffers")
struct SecretBytesTests {
    /// Releases `make()`'s buffer and returns what its probe saw after the wipe, before the free.
    static func releasedBytes(_ make: () throws -> SecretBytes) rethrows -> [UInt8] {
        let seen = Seen()
        do {
            let bytes = try make()
            #expect(bytes.withBytes { $0.contains { $0 != 0 } }, "the buffer held the secret before its release")
            bytes.releaseProbe = { seen.bytes = Array($0) }
        }
        return seen.bytes
    }

    final class Seen: @unchecked Sendable { var bytes: [UInt8] = [] }

    @Test("the whole allocation is zero once the last reference goes")
    func wipedOnRelease() throws {
        let key = Array("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n".utf8)
        let plain = Self.releasedBytes { SecretBytes(key) }
        #expect(plain.count >= key.count && plain.allSatisfy { $0 == 0 })
        // Filled to less than its capacity (a compressor's output): the unused tail is wiped too.
        let partial = try Self.releasedBytes {
            try SecretBytes(capacity: 4096) { buffer in
                buffer.copyBytes(from: key)
                buffer[4000] = 0xAA
                return key.count
            }
        }
        #expect(partial.count >= 4096 && partial.allSatisfy { $0 == 0 })
        var data = Data(key)
        let consumed = Self.releasedBytes { SecretBytes(consuming: &data) }
        #expect(consumed.allSatisfy { $0 == 0 } && data.isEmpty)
    }

    @Test("a chain and its key joined in wiped memory are the chain followed by the key")
    func chainAndKey() throws {
        let chain = Data("-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n".utf8)
        let key = SecretBytes(Data("-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n".utf8))
        let leaf = BundleInputs.Leaf(certificatePEM: chain, keyPEM: key, chainPEM: chain, notBefore: Date())
        #expect(leaf.chainAndKeyPEM.data == chain + key.data)
        // The manifest's `root` lookup copies only the certificate out of such a file.
        #expect(leaf.chainAndKeyPEM.withBytes(BundlePlan.firstCertificate) == chain)
        #expect(BundlePlan.firstCertificate(Data("no pem\nsecond line\n".utf8)) == Data("no pem\n".utf8))
    }

    @Test("gzip and tar from wiped buffers give the bytes of the Data versions")
    func archivesIdentical() throws {
        // Incompressible bytes larger than the Data version's 64 KiB output chunks.
        var random = SystemRandomNumberGenerator()
        let noise = Data((0..<300_000).map { _ in UInt8.random(in: 0...255, using: &random) })
        let text = Data(String(repeating: "-----BEGIN PRIVATE KEY-----\nabcdefgh\n", count: 20_000).utf8)
        for input in [Data(), Data("k".utf8), noise, text] {
            for level in [1, 6, 9] as [Int32] {
                #expect(try Gzip.compress(SecretBytes(input), level: level).data == Gzip.compress(input, level: level))
            }
            #expect(try Gzip.decompress(Gzip.compress(SecretBytes(input)).data) == input)
        }
        let entries = [
            TarEntry(path: "etc/a", kind: .directory, mode: 0o700),
            TarEntry(path: "etc/a/key.pem", kind: .secret(SecretBytes(text)), mode: 0o600, owner: "a", group: "a"),
            TarEntry(path: "etc/a/empty", kind: .secret(SecretBytes(Data())), mode: 0o600),
            TarEntry(path: "etc/a/cert.pem", kind: .file(Data("cert\n".utf8)), mode: 0o644),
        ]
        let plain = entries.map { entry in
            var copy = entry
            if case let .secret(bytes) = entry.kind { copy.kind = .file(bytes.data) }
            return copy
        }
        let archive = try Tar.archive(plain)
        #expect(try Tar.secretArchive(entries).data == archive)
        #expect(try Tar.archive(entries) == archive)
        #expect(try Tar.read(archive) == plain)
    }

    @Test("a host's tree, manifest and archive are byte for byte those of plain Data; key files are secret")
    func bundleIdentical() throws {
        let inventory = try BundleLayoutTests.inventory()
        let directory = try CATestSupport.temporaryDirectory("secret-bundle")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for host in ["backend-1", "frontend-1"] {
            let bundle = try BundleLayoutTests.bundle(host, inventory: inventory)
            let keys = bundle.files.filter { $0.role == .key }
            #expect(!keys.isEmpty)
            #expect(keys.allSatisfy { if case .secret = $0.body { true } else { false } }, "every key file is held in SecretBytes")
            // What the bundle was before keys were kept wiped: every file as plain Data.
            var plain = bundle
            plain.files = bundle.files.map { file in
                var copy = file
                copy.body = .plain(file.contents)
                return copy
            }
            let json = try bundle.manifest().encoded()
            #expect(try plain.manifest().encoded() == json)
            let archive = try Gzip.compress(try Tar.secretArchive(bundle.tarEntries(manifestJSON: json)))
            #expect(archive.data == (try Gzip.compress(try Tar.archive(plain.tarEntries(manifestJSON: json)))))
            let (wiped, copied) = ("\(directory)/\(host)-wiped", "\(directory)/\(host)-plain")
            try BundleWriter.writeTree(bundle, manifestJSON: json, at: wiped)
            try BundleWriter.writeTree(plain, manifestJSON: json, at: copied)
            let paths = try #require(FileManager.default.subpaths(atPath: wiped)).sorted()
            #expect(paths == FileManager.default.subpaths(atPath: copied)?.sorted())
            for path in paths {
                let (a, b) = (try FileStatus.of("\(wiped)/\(path)"), try FileStatus.of("\(copied)/\(path)"))
                #expect(a?.mode == b?.mode && a?.kind == b?.kind, "\(path)")
                if a?.kind == .regular {
                    #expect(RegularFile.contents("\(wiped)/\(path)", limit: 1 << 20) == RegularFile.contents("\(copied)/\(path)", limit: 1 << 20), "\(path)")
                }
            }
            // Either tree is what the other bundle would write: `bundle` again keeps it.
            #expect(BundleWriter.holds(bundle, manifestJSON: json, at: copied))
            #expect(BundleWriter.holds(plain, manifestJSON: json, at: wiped))
            var changed = bundle
            changed.files = bundle.files.map { file in
                var copy = file
                if file.role == .key { copy.body = .secret(SecretBytes(file.contents + Data("x".utf8))) }
                return copy
            }
            #expect(!BundleWriter.holds(changed, manifestJSON: json, at: wiped), "a key of another length is a change")
            changed.files = bundle.files.map { file in
                var copy = file
                var bytes = file.contents
                if file.role == .key { bytes[bytes.startIndex] ^= 0x20 }
                copy.body = file.role == .key ? .secret(SecretBytes(bytes)) : file.body
                return copy
            }
            #expect(!BundleWriter.holds(changed, manifestJSON: json, at: wiped), "a key of the same length, one byte changed, is a change")
        }
    }
}
