import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// PassphraseSource in SPEC §1's order: the file option first, then the environment variable; a
/// file gives its first line without the line ending; empty, NUL, short (for a new key), missing,
/// oversized and non-regular inputs are refused naming the option; and every message says where
/// the passphrase came from, never the passphrase.
@Suite("Passphrase source")
struct PassphraseSourceTests {
    static func directory() throws -> String { try CATestSupport.temporaryDirectory("passphrase") }

    static func file(_ bytes: [UInt8]) throws -> String {
        let path = try directory() + "/passphrase"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func file(_ text: String) throws -> String { try file(Array(text.utf8)) }

    static func text(_ passphrase: Passphrase) -> String { String(decoding: passphrase.bytes, as: UTF8.self) }

    // MARK: - order

    @Test("the file wins over the environment variable")
    func fileBeforeVariable() throws {
        let path = try Self.file("from the file\n")
        let source = PassphraseSource(file: path, environment: [PassphraseSource.environmentVariable: "from the variable"])
        #expect(Self.text(try source.existingPassphrase(purpose: "test")) == "from the file")
        #expect(source.field == "--passphrase-file \(path)")
    }

    @Test("without a file, the variable gives it")
    func variableWithoutFile() throws {
        let source = PassphraseSource(file: nil, environment: [PassphraseSource.environmentVariable: "from the variable"])
        #expect(Self.text(try source.existingPassphrase(purpose: "test")) == "from the variable")
        #expect(source.isGiven)
        #expect(source.field == PassphraseSource.environmentVariable)
    }

    @Test("each secret reads its own variable, never another's")
    func variablesAreSeparate() throws {
        let environment = [PassphraseSource.environmentVariable: "operations",
                           PassphraseSource.rootEnvironmentVariable: "the root one",
                           PassphraseSource.newEnvironmentVariable: "the new one 123"]
        #expect(Self.text(try PassphraseSource(file: nil, environment: environment).existingPassphrase(purpose: "t")) == "operations")
        #expect(Self.text(try PassphraseSource.root(file: nil, environment: environment).existingPassphrase(purpose: "t")) == "the root one")
        #expect(Self.text(try PassphraseSource.new(file: nil, environment: environment).newPassphrase(purpose: "t")) == "the new one 123")
        let bundle = PassphraseSource(file: nil, environment: environment, variable: PassphraseSource.bundleEnvironmentVariable)
        #expect(!bundle.isGiven)
        let rootOnly = PassphraseSource.root(file: nil, environment: [PassphraseSource.environmentVariable: "operations"])
        #expect(!rootOnly.isGiven, "the root source must not fall back to the operations variable")
    }

    @Test("isGiven: a file or the variable; neither means a prompt")
    func isGiven() throws {
        #expect(!PassphraseSource(file: nil, environment: [:]).isGiven)
        #expect(PassphraseSource(file: "/nonexistent", environment: [:]).isGiven)
        #expect(PassphraseSource(file: nil, environment: [PassphraseSource.environmentVariable: "x"]).isGiven)
        #expect(PassphraseSource(file: nil, environment: [:]).field == "passphrase prompt")
    }

    @Test("the options and variables the messages name")
    func namesForMessages() {
        #expect(PassphraseSource(file: nil, environment: [:]).alternatives == "--passphrase-file FILE or CHPKI_CA_PASSPHRASE")
        #expect(PassphraseSource.root(file: nil, environment: [:]).alternatives == "--root-passphrase-file FILE or CHPKI_ROOT_PASSPHRASE")
        #expect(PassphraseSource.new(file: nil, environment: [:]).alternatives == "--new-passphrase-file FILE or CHPKI_NEW_PASSPHRASE")
        #expect(PassphraseSource.root(file: "/r", environment: [:]).field == "--root-passphrase-file /r")
        #expect(PassphraseSource.new(file: "/n", environment: [:]).field == "--new-passphrase-file /n")
    }

    // MARK: - the file's content

    @Test("a file gives its first line without the line ending", arguments: [
        ("secret\n", "secret"), ("secret", "secret"), ("secret\r\n", "secret"), ("secret\nsecond line\n", "secret"),
        ("  spaces kept  \n", "  spaces kept  "), ("tab\tinside\n", "tab\tinside"), ("ünïcödé\n", "ünïcödé"),
    ])
    func firstLine(content: String, expected: String) throws {
        let path = try Self.file(content)
        #expect(Self.text(try PassphraseSource.read(file: path)) == expected)
    }

    @Test("only one trailing carriage return is removed")
    func oneCarriageReturn() throws {
        let path = try Self.file("secret\r\r\n")
        #expect(Self.text(try PassphraseSource.read(file: path)) == "secret\r")
    }

    @Test("an empty file or an empty first line is refused, naming the file and option", arguments: ["", "\n", "\r\n", "\nsecond\n"])
    func emptyRefused(content: String) throws {
        let path = try Self.file(content)
        let error = CATestSupport.refusal { _ = try PassphraseSource(file: path, environment: [:]).existingPassphrase(purpose: "t") }
        #expect(error?.kind == .refused)
        #expect(error?.file == path)
        #expect(error?.field == PassphraseSource.fileOption)
    }

    @Test("the root option is the one named when the root file is refused")
    func rootOptionNamed() throws {
        let path = try Self.file("\n")
        let error = CATestSupport.refusal { _ = try PassphraseSource.root(file: path, environment: [:]).existingPassphrase(purpose: "t") }
        #expect(error?.field == PassphraseSource.rootFileOption)
    }

    @Test("a NUL byte is refused (OpenSSL takes passphrases as C strings)")
    func nulRefused() throws {
        let path = try Self.file([0x61, 0x00, 0x62, 0x0A])
        let error = CATestSupport.refusal { _ = try PassphraseSource.read(file: path) }
        #expect(error?.kind == .refused)
        let variable = PassphraseSource(file: nil, environment: [PassphraseSource.environmentVariable: "a\u{0}b"])
        #expect(CATestSupport.refusal { _ = try variable.existingPassphrase(purpose: "t") }?.kind == .refused)
    }

    @Test("an empty variable is refused, naming the variable")
    func emptyVariable() throws {
        let source = PassphraseSource(file: nil, environment: [PassphraseSource.environmentVariable: ""])
        let error = CATestSupport.refusal { _ = try source.existingPassphrase(purpose: "t") }
        #expect(error?.field == PassphraseSource.environmentVariable)
    }

    @Test("a missing file is refused naming it; the variable is not used instead")
    func missingFile() throws {
        let path = try Self.directory() + "/absent"
        let source = PassphraseSource(file: path, environment: [PassphraseSource.environmentVariable: "would be wrong to use"])
        let error = CATestSupport.refusal { _ = try source.existingPassphrase(purpose: "t") }
        #expect(error?.kind == .refused)
        #expect(error?.file == path)
        #expect(error?.field == PassphraseSource.fileOption)
    }

    @Test("a directory is not a passphrase file")
    func directoryRefused() throws {
        let path = try Self.directory()
        let error = CATestSupport.refusal { _ = try PassphraseSource.read(file: path) }
        #expect(error?.file == path)
    }

    @Test("a file past the size limit is refused before it is read")
    func oversized() throws {
        let path = try Self.file(Array(repeating: UInt8(ascii: "a"), count: ReadLimits.passphraseFile + 1))
        let error = CATestSupport.refusal { _ = try PassphraseSource.read(file: path) }
        #expect(error?.file == path)
        // at the limit it is read
        let atLimit = try Self.file(Array(repeating: UInt8(ascii: "a"), count: ReadLimits.passphraseFile))
        #expect(try PassphraseSource.read(file: atLimit).count == ReadLimits.passphraseFile)
    }

    @Test("a FIFO is refused at once (never blocks waiting for a writer)")
    func fifoRefused() throws {
        let path = try Self.directory() + "/fifo"
        #expect(mkfifo(path, 0o600) == 0)
        let attempt = Background { try PassphraseSource.read(file: path) }
        guard let result = attempt.wait(10) else {
            Issue.record("reading a FIFO blocked")
            // unblock the reader so the thread ends
            let descriptor = open(path, O_WRONLY | O_NONBLOCK)
            if descriptor >= 0 { close(descriptor) }
            return
        }
        if case .success = result { Issue.record("a FIFO was read as a passphrase file") }
    }

    @Test("a symlink to a passphrase file is followed (operators keep secrets elsewhere)")
    func symlinkFollowed() throws {
        let target = try Self.file("through a link\n")
        let link = try Self.directory() + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        #expect(Self.text(try PassphraseSource.read(file: link)) == "through a link")
    }

    // MARK: - new passphrases

    @Test("a new passphrase must be at least the minimum length, from any source")
    func minimumLength() throws {
        let short = String(repeating: "x", count: PassphraseSource.minimumNewLength - 1)
        let exact = String(repeating: "x", count: PassphraseSource.minimumNewLength)
        let fromVariable = { (value: String) in PassphraseSource.new(file: nil, environment: [PassphraseSource.newEnvironmentVariable: value]) }
        #expect(CATestSupport.refusal { _ = try fromVariable(short).newPassphrase(purpose: "t") }?.field == PassphraseSource.newEnvironmentVariable)
        #expect(try fromVariable(exact).newPassphrase(purpose: "t").count == exact.count)
        let shortFile = try Self.file(short + "\n")
        let error = CATestSupport.refusal { _ = try PassphraseSource(file: shortFile, environment: [:]).newPassphrase(purpose: "t") }
        #expect(error?.field == PassphraseSource.fileOption)
        // an existing key's passphrase has no minimum: it was set before the rule, or elsewhere
        #expect(try PassphraseSource(file: shortFile, environment: [:]).existingPassphrase(purpose: "t").count == short.count)
    }

    @Test("length counts bytes, so a multi-byte passphrase of 4 characters passes")
    func lengthInBytes() throws {
        let value = "ÄÖÜß"  // 8 bytes in UTF-8
        let source = PassphraseSource.new(file: nil, environment: [PassphraseSource.newEnvironmentVariable: value])
        #expect(try source.newPassphrase(purpose: "t").count == 8)
    }

    // MARK: - never shown

    @Test("a passphrase never shows in descriptions or refusals")
    func neverShown() throws {
        let secret = "do not print me 42"
        let passphrase = CATestSupport.passphrase(secret)
        #expect(!"\(passphrase)".contains(secret))
        #expect(!String(reflecting: passphrase).contains(secret))
        let short = PassphraseSource.new(file: nil, environment: [PassphraseSource.newEnvironmentVariable: "short!"])
        let error = CATestSupport.refusal { _ = try short.newPassphrase(purpose: "t") }
        #expect(error.map { !$0.message.contains("short!") } == true)
    }

    @Test("the file is read fresh each time (a rotated secret file is picked up)")
    func readEachTime() throws {
        let path = try Self.file("first\n")
        let source = PassphraseSource(file: path, environment: [:])
        #expect(Self.text(try source.existingPassphrase(purpose: "t")) == "first")
        try Data("second\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(Self.text(try source.existingPassphrase(purpose: "t")) == "second")
    }
}
