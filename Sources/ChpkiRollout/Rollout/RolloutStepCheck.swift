import ChpkiBase
import ChpkiBundles
import ChpkiModel
import ChpkiPlatform
import ChpkiReporting
import Foundation

/// `chpki rollout-check`: the health checks of one host's step in one phase of a rollout plan,
/// run from the controller for an executor that is not chpki itself (ansible/rotate.yml): that
/// executor copies and runs what the step says, then asks chpki whether the services serve again,
/// with the certificates the step installed, exactly as `chpki rollout` checks them (the same
/// probes, the same stale-leaf rule). The plan is the document `chpki rollout-plan --json` printed
/// before the rollout started, so a forming cluster's deferred checks stay in the step of its last
/// member while the executor records hosts. Nothing runs on any host: a stale service is reported
/// (`check.rollout-stale`; the report's `status` "stale" and `service`) for the executor to run
/// its commands once more and ask again without a grace.
public enum RolloutStepCheck {
    /// What was checked, for `--json` (printed on failure too: a check's exit 1 has no error object).
    public struct Outcome: Encodable, Sendable {
        public enum Status: String, Encodable, Sendable { case healthy, stale, failed }
        public var host: String
        public var phase: String
        /// The checks that passed, as `service: kind address:port (name)`; empty and healthy: the
        /// host has no step with checks in that phase (nothing to wait for).
        public var checks: [String]
        public var status: Status = .healthy
        /// The service of the check that failed (stale: the one whose commands to run once more).
        public var service: String?
        public var error: String?
    }

    /// A check that failed: the report so far and the one-line error (exit 1).
    public struct Failure: Error, Sendable {
        public var outcome: Outcome
        public var error: ChpkiError
    }

    /// A plan's size, far above any real one (a step per host and phase).
    public static let planLimit = 16 * 1024 * 1024

    /// The phases of a plan file as `chpki rollout-plan --json` writes it, every field checked:
    /// phase names, host names, health checks (the same rules as a manifest's), commands as words.
    public static func readPlan(_ path: String) throws -> [RolloutPhase] {
        let data = try InputFile.read(path, limit: planLimit, field: "--plan")
        return try parsePlan(data, label: path)
    }

    struct Document: Decodable { var phases: [RolloutPhase] }

    static func parsePlan(_ data: Data, label: String) throws -> [RolloutPhase] {
        func refuse(_ field: String?, _ reason: String) -> ChpkiError { ChpkiError.input(.rolloutInvalidPlan, file: label, field: field, reason) }
        let document: Document
        do { document = try JSONDecoder().decode(Document.self, from: data) } catch {
            throw refuse(nil, "not a plan as chpki rollout-plan --json prints it")
        }
        for (p, phase) in document.phases.enumerated() {
            guard RolloutPlan.phaseNames.contains(phase.name) else {
                throw refuse("phases[\(p)].name", "'\(InstallPaths.shown(phase.name))' is not one of \(RolloutPlan.phaseNames.joined(separator: ", "))")
            }
            for (s, step) in phase.steps.enumerated() {
                let at = "phases[\(p)].steps[\(s)]"
                guard HostName.problem(with: step.host) == nil else { throw refuse("\(at).host", "'\(InstallPaths.shown(step.host))' is not a host name") }
                for (c, command) in step.run.enumerated() {
                    if let problem = ServiceOperations.problem(argv: command.argv) { throw refuse("\(at).run[\(c)].argv", problem) }
                }
                for (c, check) in step.health.enumerated() {
                    if let (field, problem) = check.problem() { throw refuse("\(at).health[\(c)].\(field)", problem) }
                }
            }
        }
        return document.phases
    }

    /// Runs the checks of `host`'s step in `phase`, each until it passes or `timeout` is over; with
    /// `staleGrace`, a check of the step's own host that keeps seeing a stale leaf that long ends
    /// the run early as `check.rollout-stale`. Throws at the first check that fails.
    public static func run(_ phases: [RolloutPhase], bundles: String, host: String, phase: String, timeout: TimeInterval,
                           staleGrace: TimeInterval?, say: (String) -> Void) throws -> Outcome {
        guard RolloutPlan.phaseNames.contains(phase) else {
            throw ChpkiError.input(.usageInvalidArgument, file: nil, field: "--phase", "'\(InstallPaths.shown(phase))' is not one of \(RolloutPlan.phaseNames.joined(separator: ", "))")
        }
        let step = phases.first { $0.name == phase }?.steps.first { $0.host == host && !$0.health.isEmpty }
        var passed: [String] = []
        for check in step?.health ?? [] {
            let label = "\(check.service.map { "\($0): " } ?? "")\(check.kind.rawValue) \(check.address):\(check.port) (\(check.serverName))"
            func failure(_ status: Outcome.Status, _ error: ChpkiError) -> Failure {
                Failure(outcome: Outcome(host: host, phase: phase, checks: passed, status: status, service: check.service, error: error.message),
                        error: error)
            }
            let probe: HealthProbe
            do { probe = try RolloutExecutor.probe(check, host: check.host ?? host, bundles: bundles) } catch {
                throw failure(.failed, ChpkiError(.checkRolloutFailed, ControlCharacters.escaped("\(host) \(phase): cannot run the check \(label): \(error)")))
            }
            say("health \(host) \(phase): \(probe.label)")
            let own = check.host == nil || check.host == host
            do {
                try probe.wait(timeout: timeout, staleGrace: own ? staleGrace : nil)
            } catch let HealthProbe.WaitFailure.stale(_, stale, seconds) where own && staleGrace != nil {
                var error = ChpkiError(.checkRolloutStale, ControlCharacters.escaped(
                    "\(host) \(phase): \(probe.label) \(stale) (for \(seconds)s): run the step's commands for \(check.service ?? "the service") once more, then check again"))
                error.field = check.service
                throw failure(.stale, error)
            } catch {
                throw failure(.failed, ChpkiError(.checkRolloutFailed, ControlCharacters.escaped("\(host) \(phase): \(error)")))
            }
            passed.append(label)
        }
        return Outcome(host: host, phase: phase, checks: passed)
    }
}
