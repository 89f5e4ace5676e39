import Foundation

/// `chpki bundle-frontend`: collects a bootstrapped frontend's secret files (SPEC §5), checks
/// them, and writes one archive (optionally a CMS password envelope); or, with `--compare`, says
/// whether two frontends agree.
public enum BundleFrontendCommand {
    public struct Options: Sendable {
        public var output = SecretBundleOutput()
        public var flavor: FrontendFlavor = .cinc
        /// Two roots to compare instead of bundling.
        public var compare: [String] = []

        public init() {}
    }

    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws {
        if !options.compare.isEmpty {
            guard options.compare.count == 2 else {
                throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--compare", "takes two frontend roots: --compare ROOT_A ROOT_B")
            }
            for (value, name) in [(options.output.from, "--from"), (options.output.out, "--out")] where value != nil {
                throw ChpkiError.input(.usageConflictingOptions, file: nil, field: name, "cannot be combined with --compare")
            }
            guard !options.output.encrypt else { throw ChpkiError.input(.usageConflictingOptions, file: nil, field: "--encrypt", "cannot be combined with --compare") }
            try compare(options.compare[0], options.compare[1], flavor: options.flavor, reporter: reporter)
            return
        }
        let (from, out) = try options.output.paths(source: "the frontend's filesystem root (/ on the frontend itself)")

        let (bundle, notes, problems) = try FrontendCollector.bundle(root: from, flavor: options.flavor)
        guard problems.isEmpty else { throw ChpkiError(.frontendInvalid, problems: problems) }
        try options.output.write(try bundle.archive(source: from), to: out, purpose: "the frontend bundle", environment: settings.environment, reporter: reporter)
        for note in notes { reporter.note(note) }
        try report(bundle, from: from, out: out, options: options, reporter: reporter)
    }

    struct Report: Encodable {
        var out: String
        var from: String
        var flavor: FrontendFlavor
        @NullEncoded var encrypted: String?
        var files: [SecretBundleManifest.File]
        @NullEncoded var migrationLevel: String?
        @NullEncoded var secretsFormat: String?
        @NullEncoded var credentials: Int?
        var keyFingerprints: [String: String]

        enum CodingKeys: String, CodingKey {
            case out, from, flavor, encrypted, files, credentials
            case migrationLevel = "migration_level", secretsFormat = "secrets_format", keyFingerprints = "key_fingerprints"
        }

    }

    static func report(_ bundle: FrontendBundle, from: String, out: String, options: Options, reporter: Reporter) throws {
        let manifest = try bundle.manifest
        let validation = bundle.validation
        try reporter.emit(Report(
            out: out, from: from, flavor: bundle.flavor, encrypted: options.output.encryptedDescription,
            files: manifest.files, migrationLevel: validation.migrationLevel?.description,
            secretsFormat: validation.secrets?.format.rawValue, credentials: validation.secrets?.count,
            keyFingerprints: validation.fingerprints))
        options.output.describe(manifest.files, bundle: "the \(bundle.flavor.rawValue) frontend bundle", from: from, out: out, reporter: reporter)
        if let secrets = validation.secrets {
            reporter.line("  secrets          \(secrets.format.rawValue), \(secrets.count) credentials")
        }
        let pivotal = validation.fingerprints["pivotal.pem"] ?? validation.fingerprints["chef-server.superuser_key"]
        if let pivotal {
            let matched = validation.fingerprints["chef-server.superuser_key"] != nil && validation.fingerprints["pivotal.pem"] != nil
            reporter.line("  pivotal key      SHA-256 \(pivotal)\(matched ? " (= chef-server.superuser_key)" : "")")
        }
        if let webui = validation.fingerprints["webui_pub.pem"] ?? validation.fingerprints["webui_priv.pem"] ?? validation.fingerprints["chef-server.webui_key"] {
            reporter.line("  webui key        SHA-256 \(webui)")
        }
        if let level = validation.migrationLevel {
            reporter.line("  migration level  \(level)")
        }
        reporter.line("Install it on the new frontend (after installing the package, before '\(bundle.flavor.ctl) reconfigure'):")
        reporter.line("  chpki install-frontend \(out) --root /")
    }

    static func compare(_ first: String, _ second: String, flavor: FrontendFlavor, reporter: Reporter) throws {
        let comparison = try FrontendComparison.compare(first, second, flavor: flavor)
        try reporter.emit(comparison)
        if comparison.agree {
            reporter.line("The \(flavor.rawValue) frontends \(first) and \(second) agree:")
            for item in comparison.agreements { reporter.line("  same \(item)") }
        } else {
            reporter.line("The \(flavor.rawValue) frontends \(first) and \(second) differ:")
            for item in comparison.differences { reporter.line("  \(item)") }
        }
        for note in comparison.notes { reporter.note(note) }
        guard comparison.agree else {
            let count = comparison.differences.count
            throw ChpkiError(.checkFrontendsDiffer, "the frontends \(first) and \(second) differ (\(count) difference\(count == 1 ? "" : "s"))")
        }
    }
}
