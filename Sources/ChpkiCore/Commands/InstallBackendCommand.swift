import Foundation

/// `chpki install-backend FILE [--root /]`: checks a Chef Backend secrets bundle and installs
/// `etc/chef-backend/chef-backend-secrets.json` root:root 0600 under the root, with the same rooted,
/// all-or-nothing installer as `install-frontend`.
public enum InstallBackendCommand {
    public typealias Options = SecretBundleInstallOptions

    struct Report: Encodable {
        var file: String
        var root: String
        var encrypted: Bool
        var dryRun: Bool
        var steps: [SecretBundleInstaller.Step]

        enum CodingKeys: String, CodingKey {
            case file, root, encrypted, steps
            case dryRun = "dry_run"
        }
    }

    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws {
        let bundle = try SecretBundleArchive.readFile(options.file)
        let opened = try BackendSecretsBundle.open(bundle, file: options.file) {
            try options.passphrase(for: "the backend secrets bundle", environment: settings.environment)
        }
        var data = opened.data
        defer { data.wipe() }
        let encrypted = opened.encrypted
        let plan = try SecretBundleInstaller.install([BackendSecretsBundle.path: data], layout: BackendSecretsBundle.layout,
                                                     rootPath: options.root, force: options.force, dryRun: options.dryRun,
                                                     now: try settings.now())
        try reporter.emit(Report(file: options.file, root: options.root, encrypted: encrypted, dryRun: options.dryRun, steps: plan.steps))
        SecretBundleInstaller.describe(plan, bundle: "the Chef Backend secrets bundle", options: options, reporter: reporter)
        guard !options.dryRun else { return }
        let installed = "/" + BackendSecretsBundle.path
        reporter.next(["chef-backend-ctl join-cluster <LEADER_IP> -s \(installed)",
                       "then delete \(options.file) from this host (reference 001 Step 3.5: the shared secrets must not stay behind in a copy); chef-backend keeps its own at \(installed)"])
    }
}
