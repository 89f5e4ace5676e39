import Foundation

/// `chpki install-frontend FILE`: checks a frontend bundle (decrypting it if needed) and lays its
/// files out under a root with their owners and modes (SPEC §5).
public enum InstallFrontendCommand {
    public typealias Options = SecretBundleInstallOptions

    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws {
        let data = try SecretBundleArchive.readFile(options.file)
        let opened = try FrontendBundleReader.open(data, file: options.file) {
            try options.passphrase(for: "the frontend bundle", environment: settings.environment)
        }
        let files = Dictionary(uniqueKeysWithValues: opened.bundle.files.map { ($0.path, $0.data) })
        let plan = try SecretBundleInstaller.install(files, layout: opened.bundle.flavor.layout, rootPath: options.root,
                                                     force: options.force, dryRun: options.dryRun, now: try settings.now())
        try report(plan, opened: opened, options: options, reporter: reporter)
    }

    struct Report: Encodable {
        var file: String
        var root: String
        var flavor: FrontendFlavor
        var encrypted: Bool
        var dryRun: Bool
        @NullEncoded var migrationLevel: String?
        var steps: [SecretBundleInstaller.Step]

        enum CodingKeys: String, CodingKey {
            case file, root, flavor, encrypted, steps
            case dryRun = "dry_run", migrationLevel = "migration_level"
        }

    }

    static func report(_ plan: SecretBundleInstaller.Plan, opened: FrontendBundleReader.Opened, options: Options, reporter: Reporter) throws {
        let bundle = opened.bundle
        try reporter.emit(Report(file: options.file, root: options.root, flavor: bundle.flavor, encrypted: opened.encrypted,
                                 dryRun: options.dryRun, migrationLevel: bundle.validation.migrationLevel?.description,
                                 steps: plan.steps))
        SecretBundleInstaller.describe(plan, bundle: "the \(bundle.flavor.rawValue) frontend bundle", options: options, reporter: reporter)
        if !options.dryRun {
            reporter.next(["\(bundle.flavor.ctl) reconfigure"])
        }
    }
}
