import ChpkiBase
import ChpkiBundles
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiReporting
import Foundation

/// `chpki rollout`: carries out a rollout plan (SPEC §7) and decides nothing itself. Each step,
/// in plan order: the step's files go to the host as one gzip tar (owners and modes from the new
/// manifest) on the copy command's stdin; the files the host no longer gets are removed; each
/// operation's argv runs through the run template; each health check passes (retried until the
/// timeout) from here, against the host's trust as the bundle holds it; then, when the step says
/// so, the host's new manifest is recorded (atomically). A service that answers but keeps serving
/// another leaf than the one the step installed ("stale") past `staleGrace` gets the step's
/// commands for it run once more, then the whole health timeout again. The first failure stops
/// the run: no further host is touched, nothing more is recorded, and the error names the host, the step, the
/// service and what to do next. A dry run resolves every argv and runs none.
public struct RolloutExecutor {
    public struct Options: Sendable {
        public var bundles: String
        public var state: String
        public var copy: RolloutTemplate
        public var run: RolloutTemplate
        public var healthTimeout: TimeInterval
        /// How long a service may answer with a stale leaf before its commands run once more:
        /// longer than a service takes to act on a reload it got (Patroni acts on a SIGHUP at its
        /// next loop, `loop_wait` 10 s by default; a second SIGHUP before that merges with the first).
        public var staleGrace: TimeInterval
        public var dryRun: Bool

        public static let defaultStaleGrace: TimeInterval = 15

        public init(bundles: String, state: String, copy: RolloutTemplate, run: RolloutTemplate, healthTimeout: TimeInterval,
                    staleGrace: TimeInterval = Options.defaultStaleGrace, dryRun: Bool) {
            self.staleGrace = staleGrace
            self.bundles = bundles
            self.state = state
            self.copy = copy
            self.run = run
            self.healthTimeout = healthTimeout
            self.dryRun = dryRun
        }
    }

    /// One step as carried out (or as it would be): what `--json` prints.
    public struct StepReport: Encodable, Sendable {
        public enum Status: String, Encodable, Sendable { case done, failed, skipped, planned }
        public var phase: String
        public var number: Int
        public var host: String
        public var copy: [String]
        public var copyArgv: [String]?
        public var remove: [String]
        public var removeArgv: [String]?
        public var run: [Command]
        public var health: [String]
        public var record: String?
        public var status: Status
        public var error: String?

        public struct Command: Encodable, Sendable {
            public var service: String
            public var why: [String]
            public var argv: [String]
        }

        enum CodingKeys: String, CodingKey {
            case phase, step, host, copy, remove, run, health, record, status, error
            case copyArgv = "copy_argv", removeArgv = "remove_argv"
        }

        public func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(phase, forKey: .phase)
            try container.encode(number, forKey: .step)
            try container.encode(host, forKey: .host)
            try container.encode(copy, forKey: .copy)
            try container.encode(copyArgv, forKey: .copyArgv)
            try container.encode(remove, forKey: .remove)
            try container.encode(removeArgv, forKey: .removeArgv)
            try container.encode(run, forKey: .run)
            try container.encode(health, forKey: .health)
            try container.encode(record, forKey: .record)
            try container.encode(status, forKey: .status)
            try container.encode(error, forKey: .error)
        }
    }

    public struct Report: Encodable, Sendable {
        public var dryRun: Bool
        public var steps: [StepReport]
        public var orphans: [String]

        enum CodingKeys: String, CodingKey {
            case steps, orphans
            case dryRun = "dry_run"
        }
    }

    public let options: Options
    /// Progress for people, one line at a time (stderr under `--json`).
    public let say: (String) -> Void
    /// Runs one argv with an optional stdin; its exit status (injected by tests).
    let execute: ([String], Data?) throws -> Int32

    public init(options: Options, say: @escaping (String) -> Void) {
        self.init(options: options, say: say, execute: ArgvProcess.run)
    }

    init(options: Options, say: @escaping (String) -> Void, execute: @escaping ([String], Data?) throws -> Int32) {
        self.options = options
        self.say = say
        self.execute = execute
    }

    /// A failed step: the report so far (for `--json`) and the one-line error.
    public struct Failure: Error, Sendable {
        public var report: Report
        public var error: ChpkiError
    }

    /// Every step of `phases` in order; throws `Failure` at the first step that fails.
    public func carryOut(_ phases: [RolloutPhase], orphans: [String]) throws -> Report {
        var reports: [StepReport] = []
        var planned: [(RolloutPhase, Int, RolloutStep, StepReport)] = []
        for phase in phases {
            for (index, step) in phase.steps.enumerated() {
                planned.append((phase, index + 1, step, try describe(step, phase: phase.name, number: index + 1)))
            }
        }
        for (position, (phase, number, step, described)) in planned.enumerated() {
            var report = described
            if options.dryRun {
                reports.append(report)
                continue
            }
            say("\(phase.name) step \(number): \(step.host)")
            do {
                try carryOut(step, phase: phase.name, number: number)
                report.status = .done
                reports.append(report)
            } catch let failure as StepFailure {
                report.status = .failed
                report.error = failure.reason
                reports.append(report)
                for (_, _, _, rest) in planned[(position + 1)...] {
                    var skipped = rest
                    skipped.status = .skipped
                    reports.append(skipped)
                }
                let next = planned.dropFirst(position + 1).first.map { "\($0.0.name) step \($0.1) on \($0.2.host)" } ?? "none"
                let what = failure.service.map { "service \($0), " } ?? ""
                let message = "rollout stopped at \(phase.name) step \(number) on \(step.host) (\(what)\(failure.stage)): \(failure.reason); "
                    + "no later step ran (next would have been: \(next)); \(step.host) is not recorded. "
                    + "Fix the cause and run chpki rollout again: recorded hosts are not touched twice"
                throw Failure(report: Report(dryRun: false, steps: reports, orphans: orphans),
                              error: ChpkiError(.checkRolloutFailed, ControlCharacters.escaped(message)))
            }
        }
        return Report(dryRun: options.dryRun, steps: reports, orphans: orphans)
    }

    /// Why a step failed, and where in it.
    struct StepFailure: Error {
        var stage: String
        var service: String?
        var reason: String
    }

    // MARK: - One step

    func describe(_ step: RolloutStep, phase: String, number: Int) throws -> StepReport {
        StepReport(phase: phase, number: number, host: step.host, copy: step.copy,
                   copyArgv: step.copy.isEmpty ? nil : options.copy.argv(host: step.host),
                   remove: step.remove,
                   removeArgv: step.remove.isEmpty ? nil : options.run.argv(host: step.host, command: Self.removeCommand(step.remove)),
                   run: step.run.map { .init(service: $0.service, why: $0.why, argv: options.run.argv(host: step.host, command: $0.argv)) },
                   health: step.health.map { "\($0.service.map { "\($0): " } ?? "")\($0.kind.rawValue) \($0.address):\($0.port) (\($0.serverName))" },
                   record: step.record ? recordPath(step.host) : nil, status: .planned, error: nil)
    }

    static func removeCommand(_ paths: [String]) -> [String] { ["rm", "-f", "--"] + paths }

    func recordPath(_ host: String) -> String { Path.join(options.state, "\(host).json") }

    func carryOut(_ step: RolloutStep, phase: String, number: Int) throws {
        let host = step.host
        // Everything read and checked before the first command runs: a bad bundle touches nothing.
        let manifest: (BundleManifest, Data)
        let archive: Data?
        let probes: [HealthProbe]
        do {
            manifest = try newManifest(host)
            archive = step.copy.isEmpty ? nil : try Self.archive(step, manifest: manifest.0, manifestJSON: manifest.1,
                                                                                 tree: Path.join(options.bundles, host))
            // A forming cluster's check carried to its last member's step reads the files of the
            // member it checks (its own installed leaf), not the step's host's.
            probes = try step.health.map { try probe($0, host: $0.host ?? host) }
        } catch {
            throw StepFailure(stage: "reading the bundle", service: nil, reason: "\(error)")
        }
        if let archive {
            let argv = options.copy.argv(host: host)
            say("  copy \(step.copy.count) file(s): \(RolloutTemplate.shellQuoted(argv))")
            try runChecked(argv, input: archive, stage: "copy", service: nil)
        }
        if !step.remove.isEmpty {
            let argv = options.run.argv(host: host, command: Self.removeCommand(step.remove))
            say("  remove \(step.remove.count) file(s): \(RolloutTemplate.shellQuoted(argv))")
            try runChecked(argv, input: nil, stage: "remove", service: nil)
        }
        for command in step.run {
            let argv = options.run.argv(host: host, command: command.argv)
            say("  \(command.service): \(RolloutTemplate.shellQuoted(argv))")
            try runChecked(argv, input: nil, stage: "run", service: command.service)
        }
        var ranAgain = Set<String>()
        for (probe, check) in zip(probes, step.health) {
            say("  health \(probe.label)\(probe.installedLeaf.map { ", expecting the installed leaf, serial \($0.serial.hex)" } ?? "")")
            let service = serviceOf(check, step)
            let again = service.map { service in step.run.filter { $0.service == service } } ?? []
            // Once per service and step, and only on the host whose service it is.
            let mayRunAgain = !again.isEmpty && !ranAgain.contains(service ?? "") && (check.host == nil || check.host == host)
            do {
                try probe.wait(timeout: options.healthTimeout, staleGrace: mayRunAgain ? options.staleGrace : nil)
            } catch let HealthProbe.WaitFailure.stale(_, stale, seconds) where mayRunAgain {
                let service = service ?? ""
                ranAgain.insert(service)
                say("  \(service) \(stale) (for \(seconds)s): running its commands again, once")
                for command in again {
                    let argv = options.run.argv(host: host, command: command.argv)
                    say("  \(service): \(RolloutTemplate.shellQuoted(argv))")
                    try runChecked(argv, input: nil, stage: "run again", service: service)
                }
                do { try probe.wait(timeout: options.healthTimeout) } catch {
                    throw StepFailure(stage: "health check", service: service,
                                      reason: "\(error), after its commands ran twice: see its log on \(host); a restart there makes it read its files")
                }
            } catch {
                throw StepFailure(stage: "health check", service: service, reason: "\(error)")
            }
        }
        if step.record {
            do {
                try FileManager.default.createDirectory(atPath: options.state, withIntermediateDirectories: true)
                try AtomicFile.write(manifest.1, to: recordPath(host), mode: 0o600)
            } catch {
                throw StepFailure(stage: "recording", service: nil, reason: "cannot write \(recordPath(host)): \(error)")
            }
            say("  recorded \(recordPath(host))")
        }
    }

    /// The service a health check belongs to: the plan names it; else the step's only service.
    private func serviceOf(_ check: HealthCheck, _ step: RolloutStep) -> String? {
        if let service = check.service { return service }
        let services = Set(step.run.map(\.service))
        return services.count == 1 ? services.first : nil
    }

    private func runChecked(_ argv: [String], input: Data?, stage: String, service: String?) throws {
        let status: Int32
        do { status = try execute(argv, input) } catch {
            throw StepFailure(stage: stage, service: service, reason: "\(error)")
        }
        guard status == 0 else {
            throw StepFailure(stage: stage, service: service, reason: "\(RolloutTemplate.shellQuoted(argv)) exited \(status)")
        }
    }

    /// The host's new manifest, checked like a record, and its exact bytes (what gets recorded).
    func newManifest(_ host: String) throws -> (BundleManifest, Data) {
        let path = Path.join(options.bundles, host, BundleManifest.path)
        let data = try InputFile.read(path, limit: InstallRecord.sizeLimit, field: nil)
        return (try InstallRecord.parse(data, label: path, host: host), data)
    }

    /// The step's files and directories from the host's tree, with the owners and modes the
    /// manifest gives, and the manifest's directories above them (so a host that lost one gets it
    /// back as chpki lays it out); `var/lib/chpki/MANIFEST.json` is the manifest itself, so the
    /// host can check its install (`chpki verify --installed`). Each file must still hash to the
    /// manifest's sha256: a tree changed since `chpki bundle` is refused, not half-copied.
    static func archive(_ step: RolloutStep, manifest: BundleManifest, manifestJSON: Data, tree: String) throws -> Data {
        let files = Dictionary(manifest.files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        let directories = Dictionary(manifest.directories.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        var entries: [String: TarEntry] = [:]
        func addParents(_ path: String) {
            var parent = path
            while let slash = parent.lastIndex(of: "/") {
                parent = String(parent[..<slash])
                guard entries[parent] == nil, let directory = directories[parent], let mode = ModeText.parse(directory.mode) else { continue }
                entries[parent] = TarEntry(path: parent, kind: .directory, mode: mode, owner: directory.owner, group: directory.group)
            }
        }
        for path in step.copy {
            if path == BundleManifest.path {
                entries[BundleManifest.directory] = TarEntry(path: BundleManifest.directory, kind: .directory, mode: 0o755)
                entries[path] = TarEntry(path: path, kind: .file(manifestJSON), mode: 0o644)
            } else if let directory = directories[path] {
                guard let mode = ModeText.parse(directory.mode) else { throw ChpkiError.input(.manifestInvalid, file: Path.join(tree, path), field: "mode", "not an octal mode") }
                entries[path] = TarEntry(path: path, kind: .directory, mode: mode, owner: directory.owner, group: directory.group)
            } else if let entry = files[path] {
                let source = Path.join(tree, path)
                let data = try InputFile.read(source, limit: ReadLimits.bundleFile, field: nil)
                guard try BundleManifest.sha256(data) == entry.sha256 else {
                    throw ChpkiError.input(.manifestInvalid, file: source, field: nil, "does not match the manifest's sha256; lay the bundle out again (chpki bundle)")
                }
                guard let mode = ModeText.parse(entry.mode) else { throw ChpkiError.input(.manifestInvalid, file: source, field: "mode", "not an octal mode") }
                entries[path] = TarEntry(path: path, kind: .file(data), mode: mode, owner: entry.owner, group: entry.group)
            } else {
                throw ChpkiError.input(.manifestInvalid, file: Path.join(tree, BundleManifest.path), field: "files",
                                       "has no '\(InstallPaths.shown(path))', which the plan copies")
            }
            addParents(path)
        }
        // Directories before what they hold: tar creates each with its owner and mode first.
        let ordered = entries.values.sorted {
            ($0.path.split(separator: "/").count, $0.data == nil ? 0 : 1, $0.path) < ($1.path.split(separator: "/").count, $1.data == nil ? 0 : 1, $1.path)
        }
        return try Gzip.compress(try Tar.archive(ordered))
    }

    /// A health check made runnable: its files are the host's, read from the bundle's copy.
    func probe(_ check: HealthCheck, host: String) throws -> HealthProbe {
        try Self.probe(check, host: host, bundles: options.bundles)
    }

    static func probe(_ check: HealthCheck, host: String, bundles: String) throws -> HealthProbe {
        let kind = check.kind
        let tree = Path.join(bundles, host)
        func read(_ path: String, _ field: String) throws -> Data {
            guard path.hasPrefix("/"), BundleManifest.isSafe(String(path.dropFirst())) else {
                throw ChpkiError.input(.manifestInvalid, file: nil, field: "health.\(field)", "'\(InstallPaths.shown(path))' is not an absolute path on the host")
            }
            return try InputFile.read(Path.join(tree, String(path.dropFirst())), limit: ReadLimits.bundleFile, field: nil)
        }
        let trust = try Certificate.all(pem: try read(check.cafile, "cafile"))
        guard !trust.isEmpty else { throw ChpkiError.input(.manifestInvalid, file: Path.join(tree, check.cafile), field: nil, "holds no certificate") }
        var identity: HealthProbe.Identity?
        if let certfile = check.certfile, let keyfile = check.keyfile {
            identity = .init(chainPEM: try read(certfile, "certfile"), keyPEM: try read(keyfile, "keyfile"))
        }
        // The file's first certificate is the leaf (a chain file, HAProxy's leaf+chain+key file).
        let leaf = try check.leaf.map { path in
            guard let first = try Certificate.all(pem: try read(path, "leaf")).first else {
                throw ChpkiError.input(.manifestInvalid, file: Path.join(tree, path), field: nil, "holds no certificate")
            }
            return first
        }
        return HealthProbe(kind: kind, address: check.address, port: check.port, serverName: check.serverName, trust: trust,
                           identity: identity, installedLeaf: leaf)
    }
}
