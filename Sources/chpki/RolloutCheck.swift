import ArgumentParser
import ChpkiCore
import Foundation

/// `chpki rollout-check`: one host's health checks of one phase of a rollout plan, for an executor
/// that is not `chpki rollout` (ansible/rotate.yml).
struct RolloutCheck: ParsableCommand, TakesGlobalOptions {
    static let configuration = CommandConfiguration(
        commandName: "rollout-check",
        abstract: "Run one host's health checks of one phase of a rollout plan, from the controller.",
        discussion: """
            For an executor other than 'chpki rollout' (ansible/rotate.yml): after it carried out HOST's step of \
            PHASE in the plan FILE ('chpki rollout-plan --json', written once before the rollout started), this \
            runs that step's health checks exactly as 'chpki rollout' does: a TLS handshake verified against the \
            host's trust from the bundle, etcd's and Patroni's /health, PostgreSQL's SSL with the client certificate, \
            and the leaf the server presents must be the one the host installed. Each check is retried until \
            --health-timeout; nothing runs on any host. Exit 0: every check passed (or the step has none); exit 1: \
            check.rollout-failed, or, with --stale-grace, check.rollout-stale: the service (--json: status "stale", \
            service) answers with its old certificate; run the step's commands for it once more and check again without \
            --stale-grace.

            Examples:
              chpki rollout-plan --bundles bundles --json > plan.json
              chpki rollout-check --bundles bundles --plan plan.json --host backend-1.example.com --phase trust
              chpki rollout-check --bundles bundles --plan plan.json --host backend-1.example.com --phase leaves --stale-grace 15s
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The bundle directory (chpki bundle --out DIR): the host's trust and leaf files.", valueName: "dir"),
            completion: .directory)
    var bundles: String

    @Option(help: ArgumentHelp("The plan, as chpki rollout-plan --json printed it.", valueName: "file"), completion: .file())
    var plan: String

    @Option(help: ArgumentHelp("The host (FQDN, as in the plan).", valueName: "fqdn"))
    var host: String

    @Option(help: ArgumentHelp("trust, leaves or cleanup.", valueName: "phase"))
    var phase: String

    @Option(name: .customLong("health-timeout"), help: ArgumentHelp("How long each health check may keep failing (default 60s).", valueName: "duration"))
    var healthTimeout: String = "60s"

    @Option(name: .customLong("stale-grace"),
            help: ArgumentHelp("Stop early, as check.rollout-stale, when a service answers with its old certificate this long (default: wait the whole timeout).",
                               valueName: "duration"))
    var staleGrace: String?

    func validate() throws {
        guard RolloutPlan.phaseNames.contains(phase) else {
            throw ValidationError("--phase: '\(phase)' is not one of \(RolloutPlan.phaseNames.joined(separator: ", "))")
        }
        for (option, value) in [("--health-timeout", healthTimeout), ("--stale-grace", staleGrace)] {
            guard let value else { continue }
            guard let period = Period(value), period.unit != .months, period.unit != .years else {
                throw ValidationError("\(option): '\(value)' is not a duration such as 15s, 1min")
            }
        }
    }

    func run() throws {
        let reporter = global.makeReporter()
        func seconds(_ text: String) -> TimeInterval? { Period(text).map { $0.after(Date()).timeIntervalSinceNow.rounded() } }
        let phases = try RolloutStepCheck.readPlan(plan)
        let outcome: RolloutStepCheck.Outcome
        do {
            outcome = try RolloutStepCheck.run(phases, bundles: bundles, host: host.lowercased(), phase: phase,
                                               timeout: seconds(healthTimeout) ?? 60, staleGrace: staleGrace.flatMap(seconds)) { line in
                if global.json { reporter.detail(line) } else { reporter.line(line) }
            }
        } catch let failure as RolloutStepCheck.Failure {
            try reporter.emit(failure.outcome)
            throw failure.error
        }
        try reporter.emit(outcome)
        reporter.line(outcome.checks.isEmpty ? "\(outcome.host) \(outcome.phase): no health check to wait for"
                                             : "\(outcome.host) \(outcome.phase): \(outcome.checks.count) health check(s) passed")
    }
}
