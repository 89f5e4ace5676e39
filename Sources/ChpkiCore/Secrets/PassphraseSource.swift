import Foundation

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
        var data = try InputFile.read(file, limit: ReadLimits.passphraseFile, field: "--passphrase-file")
        defer { data.withUnsafeMutableBytes { SecureMemory.cleanse($0) } }
        var line = Array(data.prefix(while: { $0 != UInt8(ascii: "\n") }))
        defer { SecureMemory.cleanse(&line) }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        guard !line.isEmpty else { throw ChpkiError.input(file: file, field: "--passphrase-file", "the passphrase is empty") }
        return try Passphrase(bytes: line, source: "--passphrase-file \(file)")
    }
}
