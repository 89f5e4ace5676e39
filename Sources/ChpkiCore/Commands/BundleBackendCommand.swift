import Foundation

/// `chpki bundle-backend --from ROOT --out FILE [--encrypt]`: carries the Chef Backend cluster's
/// shared secrets file from the bootstrap backend to each joining one (reference 001 Step 2), in
/// the same checked, optionally encrypted bundle as the frontend's.
public enum BundleBackendCommand {
    public struct Options: Sendable {
        public var from: String?
        public var out: String?
        public var encrypt = false
        public var encoding: PasswordEnvelope.Encoding = .pem
        public var passphraseFile: String?

        public init() {}
    }

    struct Report: Encodable {
        var out: String
        var from: String
        @NullEncoded var encrypted: String?
        var files: [SecretBundleManifest.File]
        var secretsFormat: String
        var credentials: [String]

        enum CodingKeys: String, CodingKey {
            case out, from, encrypted, files, credentials
            case secretsFormat = "secrets_format"
        }
    }

    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws {
        guard let from = options.from else { throw ChpkiError.input(file: nil, field: "--from", "missing: the bootstrap backend's filesystem root (/ on the backend itself)") }
        guard let out = options.out else { throw ChpkiError.input(file: nil, field: "--out", "missing: the bundle file to write") }
        if options.passphraseFile != nil && !options.encrypt {
            throw ChpkiError.input(file: nil, field: "--passphrase-file", "only used with --encrypt")
        }
        let collected = try BackendSecretsBundle.collect(root: from)
        var data = collected.data
        defer { data.wipe() }
        let secrets = collected.secrets
        let archive = try BackendSecretsBundle.archive(data, modified: collected.modified, source: from)
        try BundleFrontendCommand.writeBundle(archive, to: out, encrypt: options.encrypt, encoding: options.encoding,
                                              passphraseFile: options.passphraseFile, purpose: "the backend secrets bundle",
                                              settings: settings, reporter: reporter)
        let manifest = try SecretBundleArchive.manifest(BackendSecretsBundle.layout, files: [(BackendSecretsBundle.path, data)])
        try reporter.emit(Report(out: out, from: from, encrypted: options.encrypt ? BundleFrontendCommand.envelopeDescription : nil,
                                 files: manifest.files, secretsFormat: secrets.format.rawValue, credentials: secrets.names))
        let protection = options.encrypt ? " (\(BundleFrontendCommand.envelopeDescription), \(options.encoding.rawValue.uppercased()))" : " (tar.gz: keep it as secret as the file in it)"
        reporter.line("Wrote the Chef Backend secrets bundle of \(from) to \(out)\(protection)")
        for file in manifest.files {
            reporter.line("  \(file.mode)  \("\(file.owner):\(file.group)".padding(toLength: 12, withPad: " ", startingAt: 0))  /\(file.path)")
        }
        reporter.line("  secrets          \(secrets.format.rawValue), \(secrets.count) credentials")
        reporter.line("Install it on each joining backend, one at a time (reference 001 Step 3):")
        reporter.line("  chpki install-backend \(out) --root /")
    }
}
