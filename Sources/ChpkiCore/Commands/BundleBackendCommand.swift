import Foundation

/// `chpki bundle-backend --from ROOT --out FILE [--encrypt]`: carries the Chef Backend cluster's
/// shared secrets file from the bootstrap backend to each joining one (reference 001 Step 2), in
/// the same checked, optionally encrypted bundle as the frontend's.
public enum BundleBackendCommand {
    public typealias Options = SecretBundleOutput

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
        let (from, out) = try options.paths(source: "the bootstrap backend's filesystem root (/ on the backend itself)")
        let collected = try BackendSecretsBundle.collect(root: from)
        var data = collected.data
        defer { data.wipe() }
        let secrets = collected.secrets
        let archive = try BackendSecretsBundle.archive(data, modified: collected.modified, source: from)
        try options.write(archive, to: out, purpose: "the backend secrets bundle", environment: settings.environment, reporter: reporter)
        let manifest = try SecretBundleArchive.manifest(BackendSecretsBundle.layout, files: [(BackendSecretsBundle.path, data)])
        try reporter.emit(Report(out: out, from: from, encrypted: options.encryptedDescription,
                                 files: manifest.files, secretsFormat: secrets.format.rawValue, credentials: secrets.names))
        options.describe(manifest.files, bundle: "the Chef Backend secrets bundle", from: from, out: out, reporter: reporter)
        reporter.line("  secrets          \(secrets.format.rawValue), \(secrets.count) credentials")
        reporter.line("Install it on each joining backend, one at a time (reference 001 Step 3):")
        reporter.line("  chpki install-backend \(out) --root /")
    }
}
