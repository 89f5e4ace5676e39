import ArgumentParser
import ChpkiCore
import Foundation

/// `chpki rollout`: carries out the rollout plan (`chpki rollout-plan`) step by step.
struct RolloutRun: ParsableCommand, TakesGlobalOptions {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Carry out the rollout plan: copy, remove, reload or restart, check health, record; host by host.",
        discussion: """
            Computes the plan 'chpki rollout-plan' prints (the bundle directory against what each host last \
            installed, STATE/<fqdn>.json) and carries it out in order: trust on every host first, then leaves, one \
            host at a time for quorum services, then cleanup. For each step: the step's files go to the host as one \
            gzip tar (owners and modes from the manifest) on the stdin of the copy command; the files the host no \
            longer gets are removed (the run template with 'rm -f -- PATH...'); each operation of the step runs \
            through the run template; each health check (a TLS handshake verified against the host's trust from \
            the bundle, etcd's and Patroni's /health, PostgreSQL's SSL with the client certificate; the leaf the \
            server presents must be the one the host installed) is retried until --health-timeout; a service that \
            answers with its old certificate past --stale-grace gets the step's commands for it run once more, then \
            --health-timeout again; then the host's new manifest is recorded in STATE. The first failure stops the \
            run (exit 1): no later step runs, the failed host is not recorded, and one line names the host, the \
            step, the service and what to do next.

            Templates are split on spaces into argv, never run by a shell here; {host} is the host's FQDN; in \
            --run, {command} is the operation's argv as separate words (to run it here) and {command_sh} the \
            argv as one word quoted for the remote shell (ssh's).

            Examples:
              chpki rollout --bundles bundles --dry-run
              chpki rollout --bundles bundles --operations site-operations.yml
              chpki rollout --bundles bundles --copy 'tar -xzpf - -C /srv/{host}' --run 'env HOST={host} {command}'
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The bundle directory (chpki bundle --out DIR).", valueName: "dir"), completion: .directory)
    var bundles: String

    @Option(help: ArgumentHelp("What each host last installed: DIR/<fqdn>.json (default: <ca-dir>/installed).", valueName: "dir"),
            completion: .directory)
    var state: String?

    @Option(help: ArgumentHelp("Per-site operations (YAML): service -> on_leaf, on_config, on_trust, on_start, serial, health.", valueName: "file"),
            completion: .file())
    var operations: String?

    @Option(name: .customLong("copy"), help: ArgumentHelp("Copies one host's archive, read on stdin (default: \(RolloutTemplate.defaultCopy)).", valueName: "template"))
    var copyTemplate: String = RolloutTemplate.defaultCopy

    @Option(name: .customLong("run"), help: ArgumentHelp("Runs one command for one host (default: \(RolloutTemplate.defaultRun)).", valueName: "template"))
    var runTemplate: String = RolloutTemplate.defaultRun

    @Option(name: .customLong("health-timeout"), help: ArgumentHelp("How long each health check may keep failing (default 60s).", valueName: "duration"))
    var healthTimeout: String = "60s"

    @Option(name: .customLong("stale-grace"),
            help: ArgumentHelp("How long a service may answer with its old certificate before the step's commands for it run once more (default 15s).",
                               valueName: "duration"))
    var staleGrace: String = "15s"

    @Option(help: ArgumentHelp("Only these hosts (FQDNs or short names, comma-separated).", valueName: "h1,h2"))
    var hosts: String?

    @Flag(help: "Ignore the records: every selected host gets all its files and operations (a rebuilt host).")
    var force = false

    @Flag(name: .customLong("dry-run"), help: "Print the plan and every argv; run nothing, record nothing.")
    var dryRun = false

    func validate() throws {
        guard let period = Period(healthTimeout), period.unit != .months, period.unit != .years else {
            throw ValidationError("--health-timeout: '\(healthTimeout)' is not a duration such as 60s, 5min")
        }
        _ = period
        guard let grace = Period(staleGrace), grace.unit != .months, grace.unit != .years else {
            throw ValidationError("--stale-grace: '\(staleGrace)' is not a duration such as 15s, 1min")
        }
        _ = grace
    }

    func run() throws {
        let reporter = global.makeReporter()
        let stateDirectory = state ?? Path.join(global.settings.caDirectory.path, "installed")
        let options = RolloutExecutor.Options(
            bundles: bundles, state: stateDirectory,
            copy: try RolloutTemplate(copyTemplate, option: "--copy", needsCommand: false),
            run: try RolloutTemplate(runTemplate, option: "--run", needsCommand: true),
            healthTimeout: Period(healthTimeout).map { $0.after(Date()).timeIntervalSinceNow.rounded() } ?? 60,
            staleGrace: Period(staleGrace).map { $0.after(Date()).timeIntervalSinceNow.rounded() } ?? RolloutExecutor.Options.defaultStaleGrace,
            dryRun: dryRun)
        let plan = try RolloutPlan.make(bundles: bundles, state: stateDirectory,
                                        only: (hosts ?? "").split(separator: ",").map(String.init), force: force,
                                        operations: try operations.map(OperationsOverrides.read) ?? OperationsOverrides())
        let executor = RolloutExecutor(options: options) { line in
            if global.json { reporter.detail(line) } else { reporter.line(line) }
        }
        let report: RolloutExecutor.Report
        do {
            report = try executor.carryOut(plan.phases, orphans: plan.orphans.map(\.host))
        } catch let failure as RolloutExecutor.Failure {
            try reporter.emit(failure.report)
            throw failure.error
        }
        try reporter.emit(report)
        if dryRun {
            for step in report.steps {
                reporter.line("\(step.phase) step \(step.number): \(step.host)")
                if let argv = step.copyArgv { reporter.line("  copy \(step.copy.joined(separator: " ")) | \(RolloutTemplate.shellQuoted(argv))") }
                if let argv = step.removeArgv { reporter.line("  remove: \(RolloutTemplate.shellQuoted(argv))") }
                for command in step.run { reporter.line("  \(command.service) (\(command.why.joined(separator: ", "))): \(RolloutTemplate.shellQuoted(command.argv))") }
                for check in step.health { reporter.line("  health \(check)") }
                if let record = step.record { reporter.line("  record \(record)") }
            }
        }
        if report.steps.isEmpty { reporter.line("nothing to roll out: every host has what its bundle holds") }
        for orphan in report.orphans { reporter.line("\(orphan): installed before, no bundle now (nothing runs there)") }
        if dryRun { reporter.line("dry run: nothing was copied, run or recorded") }
    }
}
