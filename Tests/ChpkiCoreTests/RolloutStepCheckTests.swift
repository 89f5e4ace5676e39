import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiBundles
@testable import ChpkiRollout

/// `chpki rollout-check` (RolloutStepCheck): a plan file is read field by field; the checks of one
/// host's step in one phase run against a real TLS server (openssl s_server) from the bundle's
/// copies of the host's files: the installed leaf served passes, another one is
/// `check.rollout-stale` naming the service, a host or phase without checks passes with none.
@Suite("rollout-check: one host's step checks from a plan", .serialized)
struct RolloutStepCheckTests {
    static let host = "backend-1.example.com"

    /// A bundle tree holding the host's trust and leaf files: `leaf` is what the host installed.
    static func tree(_ pki: HealthProbeTests.PKI, leaf: Data) throws -> String {
        let bundles = pki.directory.appendingPathComponent("bundles").path
        let ssl = Path.join(bundles, host, "etc/ssl")
        try FileManager.default.createDirectory(atPath: ssl, withIntermediateDirectories: true)
        try pki.root.pemEncoded().write(to: URL(fileURLWithPath: Path.join(ssl, "root-ca.pem")))
        try leaf.write(to: URL(fileURLWithPath: Path.join(ssl, "server-cert.pem")))
        return bundles
    }

    static func plan(port: Int, phase: String = "leaves") -> [RolloutPhase] {
        let check = HealthCheck(.tls, address: "127.0.0.1", port: port, serverName: "svc.probe.test", cafile: "/etc/ssl/root-ca.pem",
                                leaf: "/etc/ssl/server-cert.pem", service: "patroni")
        let step = RolloutStep(host: host, copy: ["etc/ssl/server-cert.pem"], remove: [],
                               run: [RolloutCommand(service: "patroni", why: [], argv: ["systemctl", "reload", "patroni"])],
                               health: [check], record: true)
        return RolloutPlan.phaseNames.map { RolloutPhase(name: $0, steps: $0 == phase ? [step] : []) }
    }

    @Test("the installed leaf served passes; another one is check.rollout-stale naming the service; no step, no check")
    func checks() throws {
        let pki = try HealthProbeTests.PKI()
        let server = try HealthProbeTests.Server(pki, health: #"{"health":"true"}"#)
        let plan = Self.plan(port: server.port)

        let fresh = try Self.tree(pki, leaf: try pki.served.pemEncoded())
        let outcome = try RolloutStepCheck.run(plan, bundles: fresh, host: Self.host, phase: "leaves", timeout: 5, staleGrace: 1) { _ in }
        #expect(outcome.checks.count == 1)
        #expect(try RolloutStepCheck.run(plan, bundles: fresh, host: Self.host, phase: "trust", timeout: 5, staleGrace: 1) { _ in }.checks.isEmpty)
        #expect(try RolloutStepCheck.run(plan, bundles: fresh, host: "backend-2.example.com", phase: "leaves", timeout: 5, staleGrace: 1) { _ in }
            .checks.isEmpty)

        let stale = try Self.tree(pki, leaf: try pki.other.pemEncoded())
        let start = Date()
        do {
            _ = try RolloutStepCheck.run(plan, bundles: stale, host: Self.host, phase: "leaves", timeout: 20, staleGrace: 1) { _ in }
            Issue.record("a stale leaf passed")
        } catch let failure as RolloutStepCheck.Failure {
            let error = failure.error
            #expect(failure.outcome.status == .stale && failure.outcome.service == "patroni")
            #expect(error.code == .checkRolloutStale && error.field == "patroni", "\(error)")
            #expect(error.message.contains(pki.served.serial.hex) && error.message.contains(pki.other.serial.hex), "\(error.message)")
            #expect(error.exitCode == 1)
        }
        #expect(Date().timeIntervalSince(start) < 10, "the grace, not the timeout")
        // Without a grace: the whole timeout, then a failed check (the executor already ran the commands again).
        do {
            _ = try RolloutStepCheck.run(plan, bundles: stale, host: Self.host, phase: "leaves", timeout: 1, staleGrace: nil) { _ in }
            Issue.record("a stale leaf passed")
        } catch let failure as RolloutStepCheck.Failure {
            #expect(failure.error.code == .checkRolloutFailed && failure.outcome.status == .failed, "\(failure.error)")
        }
    }

    @Test("a forming cluster's check carried to another member's step reads the member it checks: its installed leaf, not the step host's")
    func deferredCheckReadsItsOwnHost() throws {
        let pki = try HealthProbeTests.PKI()
        let server = try HealthProbeTests.Server(pki, health: #"{"health":"true"}"#)
        // backend-1 installed the leaf the server presents; backend-3, whose step carries the check, another
        let bundles = try Self.tree(pki, leaf: try pki.served.pemEncoded())
        let last = "backend-3.example.com"
        let ssl = Path.join(bundles, last, "etc/ssl")
        try FileManager.default.createDirectory(atPath: ssl, withIntermediateDirectories: true)
        try pki.root.pemEncoded().write(to: URL(fileURLWithPath: Path.join(ssl, "root-ca.pem")))
        try pki.other.pemEncoded().write(to: URL(fileURLWithPath: Path.join(ssl, "server-cert.pem")))
        var check = HealthCheck(.tls, address: "127.0.0.1", port: server.port, serverName: "svc.probe.test", cafile: "/etc/ssl/root-ca.pem",
                                leaf: "/etc/ssl/server-cert.pem", service: "etcd")
        check.host = Self.host
        let step = RolloutStep(host: last, copy: ["etc/ssl/server-cert.pem"], remove: [], run: [], health: [check], record: true)
        let plan = RolloutPlan.phaseNames.map { RolloutPhase(name: $0, steps: $0 == "leaves" ? [step] : []) }
        let outcome = try RolloutStepCheck.run(plan, bundles: bundles, host: last, phase: "leaves", timeout: 5, staleGrace: 1) { _ in }
        #expect(outcome.checks.count == 1)
        // and the executor's probe for that step: the checked member's leaf
        let probe = try RolloutExecutor.probe(check, host: check.host ?? last, bundles: bundles)
        #expect(probe.installedLeaf?.serial == pki.served.serial)
    }

    @Test("a plan file: what rollout-plan --json prints reads back; anything else is rollout.invalid-plan naming the field")
    func planFile() throws {
        let plan = Self.plan(port: 8008)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        struct Document: Encodable { var phases: [RolloutPhase]; var orphans: [String] }
        let data = try encoder.encode(Document(phases: plan, orphans: []))
        #expect(try RolloutStepCheck.parsePlan(data, label: "plan.json") == plan)
        let text = String(decoding: data, as: UTF8.self)
        for (bad, field) in [
            (text.replacingOccurrences(of: "\"cleanup\"", with: "\"later\""), "phases[2].name"),
            (text.replacingOccurrences(of: "backend-1.example.com", with: "backend_1;rm"), "phases[1].steps[0].host"),
            (text.replacingOccurrences(of: "\"\\/etc\\/ssl\\/server-cert.pem\"", with: "\"etc/ssl/../x\""), "phases[1].steps[0].health[0].leaf"),
            (text.replacingOccurrences(of: "\"port\":8008", with: "\"port\":0"), "phases[1].steps[0].health[0].port"),
            ("{\"phases\": 3}", nil),
        ] {
            #expect(bad != text || field == nil, "the scenario changed nothing: \(field ?? "-")")
            do {
                _ = try RolloutStepCheck.parsePlan(Data(bad.utf8), label: "plan.json")
                Issue.record("accepted: \(field ?? bad)")
            } catch let error as ChpkiError {
                #expect(error.code == .rolloutInvalidPlan && error.field == field && error.file == "plan.json", "\(error)")
            }
        }
    }
}
