import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the CA passphrase comes from, in SPEC §1's order: `--passphrase-file`, then
/// `CHPKI_CA_PASSPHRASE`, then a no-echo prompt on the terminal. Never from argv.
public struct PassphraseSource: Sendable {
    public static let environmentVariable = "CHPKI_CA_PASSPHRASE"
    /// The shortest passphrase chpki accepts for a key it encrypts.
    public static let minimumNewLength = 8

    /// The variable for a frontend bundle's `--encrypt` passphrase (a different secret from the CA's).
    public static let bundleEnvironmentVariable = "CHPKI_BUNDLE_PASSPHRASE"

    public var file: String?
    public var environment: [String: String]
    /// The environment variable consulted after `--passphrase-file`.
    public var variable: String

    public init(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                variable: String = PassphraseSource.environmentVariable) {
        self.file = file
        self.environment = environment
        self.variable = variable
    }

    /// The passphrase for a key chpki is about to encrypt: asked twice at a prompt, and at least
    /// `minimumNewLength` characters from any source.
    public func newPassphrase(purpose: String) throws -> Passphrase {
        let (passphrase, field) = try obtain(prompt: "Passphrase for \(purpose): ", confirm: true)
        guard passphrase.bytes.count >= Self.minimumNewLength else {
            throw ChpkiError.input(file: nil, field: field, "the passphrase must be at least \(Self.minimumNewLength) characters")
        }
        return passphrase
    }

    /// The passphrase that opens an existing key.
    public func existingPassphrase(purpose: String) throws -> Passphrase {
        try obtain(prompt: "Passphrase for \(purpose): ", confirm: false).0
    }

    private func obtain(prompt: String, confirm: Bool) throws -> (Passphrase, String) {
        if let file {
            return (try Self.read(file: file), "--passphrase-file")
        }
        if let value = environment[variable] {
            return (try Passphrase(bytes: Array(value.utf8), source: variable), variable)
        }
        var first = try Terminal.readSecret(prompt: prompt, variable: variable)
        defer { SecureMemory.cleanse(&first) }
        if confirm {
            var second = try Terminal.readSecret(prompt: "Repeat the passphrase: ", variable: variable)
            defer { SecureMemory.cleanse(&second) }
            guard first == second else { throw ChpkiError.input(file: nil, field: "passphrase", "the two passphrases differ") }
        }
        return (try Passphrase(bytes: first, source: "passphrase prompt"), "passphrase prompt")
    }

    /// The first line of `file`, without its line ending (as `openssl -passin file:` reads it).
    static func read(file: String) throws -> Passphrase {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            throw ChpkiError.input(file: file, field: "--passphrase-file", "no such file")
        }
        guard !isDirectory.boolValue else { throw ChpkiError.input(file: file, field: "--passphrase-file", "is a directory") }
        guard let contents = FileManager.default.contents(atPath: file) else {
            throw ChpkiError.input(file: file, field: "--passphrase-file", "cannot read the file")
        }
        var data = contents
        defer { data.withUnsafeMutableBytes { SecureMemory.cleanse($0) } }
        var line = Array(data.prefix(while: { $0 != UInt8(ascii: "\n") }))
        defer { SecureMemory.cleanse(&line) }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        guard !line.isEmpty else { throw ChpkiError.input(file: file, field: "--passphrase-file", "the passphrase is empty") }
        return try Passphrase(bytes: line, source: "--passphrase-file \(file)")
    }
}

/// The controlling terminal, for the one thing chpki asks interactively: a passphrase, never echoed.
enum Terminal {
    static func readSecret(prompt: String, variable: String = PassphraseSource.environmentVariable) throws -> [UInt8] {
        let descriptor = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ChpkiError.input(file: nil, field: "passphrase",
                "no passphrase given and no terminal to ask on: use --passphrase-file FILE or \(variable)\(variable == PassphraseSource.environmentVariable ? " (or --no-passphrase for init-ca)" : "")")
        }
        defer { close(descriptor) }
        var original = termios()
        guard tcgetattr(descriptor, &original) == 0 else { throw POSIXFailure.last("cannot read terminal settings") }
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO)
        silent.c_lflag |= tcflag_t(ICANON)
        _ = prompt.withCString { write(descriptor, $0, strlen($0)) }
        var bytes: [UInt8] = []
        // A Ctrl-C while echo is off restores the terminal before the process exits.
        try PromptSignalGuard.during(descriptor: descriptor, original: original) {
            guard tcsetattr(descriptor, TCSAFLUSH, &silent) == 0 else { throw POSIXFailure.last("cannot turn off echo") }
            defer {
                tcsetattr(descriptor, TCSAFLUSH, &original)
                _ = write(descriptor, "\n", 1)
            }
            var byte: UInt8 = 0
            while read(descriptor, &byte, 1) == 1, byte != UInt8(ascii: "\n") {
                bytes.append(byte)
            }
            byte = 0
        }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return bytes
    }
}
