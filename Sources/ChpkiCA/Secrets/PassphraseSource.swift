import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Where a passphrase comes from, in SPEC §1's order: a file option (`--passphrase-file`), then an
/// environment variable (`CHPKI_CA_PASSPHRASE`), then a no-echo prompt when stdin is a terminal.
/// Never from argv. The CA has two (SPEC §6): the operations passphrase (`PassphraseSource(file:)`)
/// and the root passphrase (`.root(file:)`); `passphrase change` reads a third, the new one (`.new(file:)`).
public struct PassphraseSource: Sendable {
    public static let environmentVariable = "CHPKI_CA_PASSPHRASE"
    public static let rootEnvironmentVariable = "CHPKI_ROOT_PASSPHRASE"
    public static let newEnvironmentVariable = "CHPKI_NEW_PASSPHRASE"
    public static let fileOption = "--passphrase-file"
    public static let rootFileOption = "--root-passphrase-file"
    public static let newFileOption = "--new-passphrase-file"
    /// The shortest passphrase chpki accepts for a key it encrypts.
    public static let minimumNewLength = 8

    /// The variable for a frontend bundle's `--encrypt` passphrase (a different secret from the CA's).
    public static let bundleEnvironmentVariable = "CHPKI_BUNDLE_PASSPHRASE"

    public var file: String?
    public var environment: [String: String]
    /// The environment variable consulted after `--passphrase-file`.
    public var variable: String
    /// The option that names `file`, for messages.
    public var option: String

    public init(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                variable: String = PassphraseSource.environmentVariable, option: String = PassphraseSource.fileOption) {
        self.file = file
        self.environment = environment
        self.variable = variable
        self.option = option
    }

    /// The root passphrase: `--root-passphrase-file`, `CHPKI_ROOT_PASSPHRASE`, a prompt.
    public static func root(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> PassphraseSource {
        PassphraseSource(file: file, environment: environment, variable: rootEnvironmentVariable, option: rootFileOption)
    }

    /// The new passphrase of `passphrase change`: `--new-passphrase-file`, `CHPKI_NEW_PASSPHRASE`, a prompt (twice).
    public static func new(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> PassphraseSource {
        PassphraseSource(file: file, environment: environment, variable: newEnvironmentVariable, option: newFileOption)
    }

    /// Whether a file or the variable gives the passphrase (else it would be asked for).
    public var isGiven: Bool { file != nil || environment[variable] != nil }

    /// How to give it without a prompt, for messages: "--root-passphrase-file FILE or CHPKI_ROOT_PASSPHRASE".
    public var alternatives: String { "\(option) FILE or \(variable)" }

    /// Where the passphrase came from (or would), for messages: "--passphrase-file F", the variable, or the prompt.
    public var field: String {
        if let file { return "\(option) \(file)" }
        return environment[variable] != nil ? variable : "passphrase prompt"
    }

    /// The passphrase for a key chpki is about to encrypt: asked twice at a prompt, and at least
    /// `minimumNewLength` characters from any source.
    public func newPassphrase(purpose: String) throws -> Passphrase {
        let (passphrase, field) = try obtain(prompt: "Passphrase for \(purpose): ", confirm: true)
        guard passphrase.bytes.count >= Self.minimumNewLength else {
            throw ChpkiError.input(.passphraseTooShort, file: nil, field: field, "the passphrase must be at least \(Self.minimumNewLength) characters")
        }
        return passphrase
    }

    /// The passphrase that opens an existing key.
    public func existingPassphrase(purpose: String) throws -> Passphrase {
        try obtain(prompt: "Passphrase for \(purpose): ", confirm: false).0
    }

    private func obtain(prompt: String, confirm: Bool) throws -> (Passphrase, String) {
        if let file {
            return (try Self.read(file: file, option: option), option)
        }
        if let value = environment[variable] {
            return (try Passphrase(bytes: Array(value.utf8), source: variable), variable)
        }
        let hint = alternatives + (variable == Self.environmentVariable ? " (or --no-passphrase for init-ca)" : "")
        var first = try Terminal.readSecret(prompt: prompt, alternatives: hint)
        defer { SecureMemory.cleanse(&first) }
        if confirm {
            var second = try Terminal.readSecret(prompt: "Repeat the passphrase: ", alternatives: hint)
            defer { SecureMemory.cleanse(&second) }
            guard first == second else { throw ChpkiError.input(.passphraseMismatch, file: nil, field: "passphrase", "the two passphrases differ") }
        }
        return (try Passphrase(bytes: first, source: "passphrase prompt"), "passphrase prompt")
    }

    /// The first line of `file`, without its line ending (as `openssl -passin file:` reads it).
    package static func read(file: String, option: String = PassphraseSource.fileOption) throws -> Passphrase {
        var data = try InputFile.read(file, limit: ReadLimits.passphraseFile, field: option)
        defer { data.withUnsafeMutableBytes { SecureMemory.cleanse($0) } }
        var line = Array(data.prefix(while: { $0 != UInt8(ascii: "\n") }))
        defer { SecureMemory.cleanse(&line) }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        guard !line.isEmpty else { throw ChpkiError.input(.passphraseInvalid, file: file, field: option, "the passphrase is empty") }
        return try Passphrase(bytes: line, source: "\(option) \(file)")
    }
}
