import ChpkiBase
import ChpkiCA
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiReporting
import Foundation

/// Where and how a secret bundle command (`bundle-frontend`, `bundle-backend`) writes its bundle:
/// the options both take, their checks, the write (0600, atomic, a CMS password envelope with
/// `--encrypt`) and the lines that describe what was written. One place, so the two commands can't
/// drift apart in what they accept or how they protect the file.
public struct SecretBundleOutput: Sendable {
    /// The source host's filesystem root (`/` on that host itself).
    public var from: String?
    /// The bundle file to write.
    public var out: String?
    public var encrypt = false
    public var encoding: PasswordEnvelope.Encoding = .pem
    /// With `encrypt`: the envelope's passphrase, first line of this file.
    public var passphraseFile: String?

    public init() {}

    /// The source root and the output file, or the refusal naming the missing or misused option.
    /// `source` says what `--from` is for this command, e.g. "the frontend's filesystem root".
    package func paths(source: String) throws -> (from: String, out: String) {
        guard let from else { throw ChpkiError.input(.usageMissingOption, file: nil, field: "--from", "missing: \(source)") }
        guard let out else { throw ChpkiError.input(.usageMissingOption, file: nil, field: "--out", "missing: the bundle file to write") }
        if passphraseFile != nil && !encrypt {
            throw ChpkiError.input(.usageConflictingOptions, file: nil, field: "--passphrase-file", "only used with --encrypt")
        }
        return (from, out)
    }

    /// Writes `archive` (a secret bundle's tar.gz) to `out`, 0600 and atomically, sealed in a CMS
    /// password envelope when `encrypt`; `purpose` names the bundle at the passphrase prompt.
    package func write(_ archive: Data, to out: String, purpose: String, environment: [String: String], reporter: Reporter) throws {
        var archive = archive
        defer { archive.wipe() }
        guard encrypt else {
            try AtomicFile.write(archive, to: out, mode: 0o600)
            return
        }
        let passphrase = try PassphraseSource(file: passphraseFile, environment: environment,
                                              variable: PassphraseSource.bundleEnvironmentVariable)
            .newPassphrase(purpose: purpose)
        reporter.progress("encrypting (PBKDF2, \(PasswordEnvelope.defaultIterations) iterations)")
        let sealed = try PasswordEnvelope.seal(archive, passphrase: passphrase, encoding: encoding)
        try AtomicFile.write(sealed, to: out, mode: 0o600)
    }

    static let envelopeDescription =
        "CMS EnvelopedData, password recipient: AES-256-CBC, PBKDF2-HMAC-SHA1 \(PasswordEnvelope.defaultIterations) iterations"

    /// The JSON report's `encrypted` field: how the file is protected, or nil for a plain tar.gz.
    package var encryptedDescription: String? { encrypt ? Self.envelopeDescription : nil }

    /// The human report: "Wrote BUNDLE of FROM to OUT (protection)" and one line per file.
    package func describe(_ files: [SecretBundleManifest.File], bundle: String, from: String, out: String, reporter: Reporter) {
        let keep = files.count == 1 ? "the file in it" : "the files in it"
        let protection = encrypt ? "\(Self.envelopeDescription), \(encoding.rawValue.uppercased())" : "tar.gz: keep it as secret as \(keep)"
        reporter.line("Wrote \(bundle) of \(from) to \(out) (\(protection))")
        for file in files {
            reporter.line("  \(file.mode)  \("\(file.owner):\(file.group)".padding(toLength: 12, withPad: " ", startingAt: 0))  /\(file.path)")
        }
    }
}
