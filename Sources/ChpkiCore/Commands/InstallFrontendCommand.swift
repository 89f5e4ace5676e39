import Foundation

/// `chpki install-frontend FILE`: checks a frontend bundle (decrypting it if needed) and lays its
/// files out under a root with their owners and modes (SPEC §5).
public enum InstallFrontendCommand {
    public struct Options: Sendable {
        public var file: String
        public var root = "/"
        public var dryRun = false
        public var force = false
        public var passphraseFile: String?

        public init(file: String) {
            self.file = file
        }
    }

    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws {
        let data: Data
        switch RegularFile.read(options.file) {
        case let .success((contents, _)): data = contents
        case .failure(.missing): throw ChpkiError.input(file: options.file, field: nil, "no such file")
        case .failure(.notRegular): throw ChpkiError.input(file: options.file, field: nil, "not a regular file")
        case let .failure(.unreadable(reason)): throw ChpkiError.input(file: options.file, field: nil, "cannot read: \(reason)")
        }
        let opened = try FrontendBundleReader.open(data, file: options.file) {
            try PassphraseSource(file: options.passphraseFile, environment: settings.environment,
                                 variable: PassphraseSource.bundleEnvironmentVariable)
                .existingPassphrase(purpose: "the frontend bundle \(options.file)")
        }
        guard let rootStatus = try FileStatus.of(options.root) else {
            throw ChpkiError.input(file: options.root, field: "--root", "no such directory")
        }
        guard rootStatus.kind == .directory else { throw ChpkiError.input(file: options.root, field: "--root", "not a directory") }

        let plan = try FrontendInstaller.plan(opened.bundle, root: options.root, force: options.force, now: try settings.now())
        guard plan.conflicts.isEmpty else {
            if options.dryRun { printPlan(plan, dryRun: true, reporter: reporter) }
            throw ChpkiError(.refused, plan.conflicts.joined(separator: "\n"))
        }
        if !options.dryRun { try FrontendInstaller.apply(plan) }
        try report(plan, opened: opened, options: options, reporter: reporter)
    }

    struct Report: Encodable {
        var file: String
        var root: String
        var flavor: FrontendFlavor
        var encrypted: Bool
        var dryRun: Bool
        @NullEncoded var migrationLevel: String?
        var steps: [FrontendInstaller.Step]

        enum CodingKeys: String, CodingKey {
            case file, root, flavor, encrypted, steps
            case dryRun = "dry_run", migrationLevel = "migration_level"
        }

    }

    static func printPlan(_ plan: FrontendInstaller.Plan, dryRun: Bool, reporter: Reporter) {
        for step in plan.steps {
            let verb = dryRun ? "would \(step.action.rawValue)" : step.action.rawValue
            var line = "  \(verb.padding(toLength: dryRun ? 15 : 9, withPad: " ", startingAt: 0))  \(step.mode)  \("\(step.owner):\(step.group)".padding(toLength: 12, withPad: " ", startingAt: 0))  \(step.path)"
            if let backup = step.backup { line += "  (old file kept as \(backup))" }
            reporter.line(line)
        }
    }

    static func report(_ plan: FrontendInstaller.Plan, opened: FrontendBundleReader.Opened, options: Options, reporter: Reporter) throws {
        let bundle = opened.bundle
        try reporter.emit(Report(file: options.file, root: options.root, flavor: bundle.flavor, encrypted: opened.encrypted,
                                 dryRun: options.dryRun, migrationLevel: bundle.validation.migrationLevel?.description,
                                 steps: plan.steps))
        let count = { (action: FrontendInstaller.Action) in plan.steps.filter { $0.action == action }.count }
        if options.dryRun {
            reporter.line("Dry run: installing the \(bundle.flavor.rawValue) frontend bundle \(options.file) into \(options.root) would:")
        } else {
            reporter.line("Installed the \(bundle.flavor.rawValue) frontend bundle \(options.file) into \(options.root):")
        }
        printPlan(plan, dryRun: options.dryRun, reporter: reporter)
        reporter.line("  \(count(.create)) created, \(count(.replace)) replaced, \(count(.metadata)) mode/owner set, \(count(.unchanged)) unchanged, \(count(.mkdir)) directories created\(options.dryRun ? " (nothing written)" : "")")
        if let note = plan.ownershipNote { reporter.note(note) }
        if !options.dryRun {
            reporter.line("Next: \(bundle.flavor.ctl) reconfigure")
        }
    }
}
