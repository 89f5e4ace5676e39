import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// Inputs that crashed a reader under `scripts/fuzz` (SPEC §8: no input makes chpki crash), kept
/// in `Tests/fuzz-regressions/TARGET/` and replayed through the same entry point the fuzzer
/// called. Before its fix each one trapped, which kills this test process: that is the failure.
@Suite("fuzz regressions")
struct FuzzRegressionTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz-regressions")

    static let entryPoints: [String: @Sendable (Data) -> Void] = [
        "frontend-bundle": FuzzEntry.frontendBundle,
        "tar": FuzzEntry.tar,
        "inventory": FuzzEntry.inventory,
        "inspect": FuzzEntry.inspect,
        "veil": FuzzEntry.veil,
        "template": FuzzEntry.templateOverride,
        "state": FuzzEntry.state,
    ]

    /// `TARGET/FILE` for every kept input.
    static let inputs: [String] = {
        let files = FileManager.default
        return ((try? files.contentsOfDirectory(atPath: directory.path)) ?? []).sorted().flatMap { target in
            ((try? files.contentsOfDirectory(atPath: directory.appendingPathComponent(target).path)) ?? []).sorted()
                .map { "\(target)/\($0)" }
        }
    }()

    static func data(_ input: String) throws -> Data {
        try Data(contentsOf: directory.appendingPathComponent(input))
    }

    @Test("every kept input is known to a fuzz target")
    func inputsHaveTargets() {
        #expect(!Self.inputs.isEmpty, "no inputs under \(Self.directory.path)")
        for input in Self.inputs {
            #expect(Self.entryPoints[String(input.prefix { $0 != "/" })] != nil, "\(input): no such fuzz target")
        }
    }

    @Test("a kept input runs through its reader without a trap", arguments: inputs)
    func replay(_ input: String) throws {
        let entry = try #require(Self.entryPoints[String(input.prefix { $0 != "/" })])
        entry(try Self.data(input))
    }

    /// `Int(_:radix:)` takes a sign, so `-0000000001` read as -1 passed the bounds check and the
    /// member's slice ran backwards (a trap in `Tar.read`).
    @Test("a tar size field with a sign is a bad numeric field, not a trap")
    func negativeTarSize() throws {
        let data = try Self.data("tar/negative-size.tar")
        #expect { try Tar.read(data) } throws: { error in
            (error as? ChpkiError)?.message.contains("MANIFEST.json: size is not an octal number") == true
        }
        #expect(throws: ChpkiError.self) {
            try FrontendBundleReader.open(try Gzip.compress(data), file: "negative-size.tar.gz") { throw ChpkiError(.passphraseMissing, "no passphrase") }
        }
    }

    /// An iPAddress SAN of 1 (or 0) octets: `formatAddress` handed it to inet_ntop as IPv4, which
    /// read 4 bytes and printed heap memory (ASan: heap-buffer-overflow in `inspect`).
    @Test("an IP SAN that is neither 4 nor 16 octets is shown by its length", arguments: [
        ("inspect/short-ip-san.pem", "IP:<invalid length=1>"), ("inspect/empty-ip-san.pem", "IP:<invalid length=0>"),
    ])
    func malformedIPAddressSAN(_ input: String, _ shown: String) throws {
        let certificate = try Certificate(pem: try Self.data(input))
        #expect(certificate.subjectAlternativeNames.map(\.description) == [shown])
        #expect(GeneralName.formatAddress([127, 0, 0, 1]) == "127.0.0.1")
        #expect(GeneralName.formatAddress([UInt8](repeating: 0, count: 15) + [1]) == "::1")
    }

    /// Found by review while fuzzing: `chpki revoke ＡＢ` trapped (force-unwrap of a fullwidth digit
    /// pair that `isHexDigit` let through). A serial is ASCII hex; anything else is a host name.
    @Test("a serial in fullwidth digits is not a serial, not a trap")
    func fullwidthSerial() {
        #expect(SerialNumber(hex: "ＡＢ") == nil)
        #expect(SerialNumber(hex: "０１:０２") == nil)
        #expect(SerialNumber(hex: "7a:B1")?.hex == "7AB1")
    }

    /// Found by the inventory fuzzer (minimised to `\r\rn:\rn:`): Yams counts a CR or CRLF as a
    /// line break, Swift's `split(separator: "\n")` did not, so the line of a duplicated key was
    /// past the last line and the search for it trapped. A CRLF `cluster.yml` (edited on Windows)
    /// with a duplicated key crashed `chpki issue`.
    @Test("a duplicated key in a CR or CRLF inventory is reported as in an LF one", arguments: [
        "inventory/cr-duplicate-key.yml", "inventory/crlf-duplicate-key.yml",
    ])
    func duplicateKeyAfterCarriageReturns(_ input: String) throws {
        let text = String(decoding: try Self.data(input), as: UTF8.self)
        let unix = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        func message(_ yaml: String) -> String? {
            do {
                _ = try Inventory.parse(yaml: yaml, path: "cluster.yml")
                return nil
            } catch {
                return (error as? ChpkiError)?.message
            }
        }
        let expected = try #require(message(unix))
        #expect(expected.contains("duplicate key 'n"), "\(expected)")
        #expect(message(text) == expected)
    }
}
