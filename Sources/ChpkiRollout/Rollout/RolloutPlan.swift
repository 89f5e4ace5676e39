import ChpkiBase
import ChpkiBundles
import ChpkiModel
import ChpkiPlatform
import Foundation

/// `chpki rollout-plan` (and what `chpki rollout` carries out): every host tree of a bundle
/// directory against the manifest that host last installed, as ONE ordered plan that is safe
/// across hosts (SPEC §7 "Deployment", ROLLOUT-CONTRACT):
///
/// - phase `trust`: every host whose trust files change gets only those (and the removal of
///   trust files it no longer has) and runs `on_trust` of the services they belong to, before
///   any leaf anywhere: during `rotate-ca`, every host trusts the new root before any host
///   presents a leaf of it;
/// - phase `leaves`: the remaining changes per host (leaves, keys, config; a bootstrap file only
///   where the host never had one) and `on_leaf` (`on_config` when a config file changed) of
///   their services;
/// - phase `cleanup`: removal of the files no longer in a host's manifest, once nothing uses them.
///
/// Each step is one host, hosts in name order, each with the health checks of the services it
/// touched: an executor passes a step only when they pass, so a quorum service (`serial`)
/// restarts one member at a time, each healthy before the next. A host's last step records it.
/// Everything is computed before anything runs: one refused record or manifest refuses the whole
/// plan (exit 2), so nothing runs on any host.
public struct RolloutPlan: Encodable, Sendable {
    public var phases: [RolloutPhase]
    /// Installed before, no bundle now: nothing runs there (the host may be gone).
    public var orphans: [Orphan]
    /// Per host: the diff behind its steps (for people and `--tsv`, not in the JSON).
    public var hosts: [HostChanges]

    public struct Orphan: Codable, Sendable, Equatable {
        public var host: String
        public var record: String
    }

    /// One host's comparison: the new manifest in the tree, the record, and what changed.
    public struct HostChanges: Sendable {
        public var host: String
        public var manifest: String
        public var record: String
        public var diff: ManifestDiff
    }

    enum CodingKeys: String, CodingKey { case phases, orphans }

    /// The phases in the order they run.
    public static let phaseNames = ["trust", "leaves", "cleanup"]

    /// Every step of every phase, in order.
    public var steps: [RolloutStep] { phases.flatMap(\.steps) }

    /// `bundles`: the trees `chpki bundle --out` laid out; `state`: one `<fqdn>.json` per host
    /// (absent: nothing installed yet); `only`: FQDNs or short names (empty: every host);
    /// `force`: the records are not read, every selected host is installed in full;
    /// `operations`: a site's overrides of the descriptors' operations.
    public static func make(bundles: String, state: String, only: [String], force: Bool,
                            operations: OperationsOverrides = OperationsOverrides()) throws -> RolloutPlan {
        let trees = try hostTrees(bundles)
        var selected = trees
        if !only.isEmpty {
            selected = []
            for wanted in only.map({ $0.lowercased() }) where !wanted.isEmpty {
                guard let match = trees.first(where: { $0 == wanted || $0.split(separator: ".").first.map(String.init) == wanted }) else {
                    throw ChpkiError.input(.rolloutUnknownHost, file: nil, field: "--hosts", "no bundle for host '\(InstallPaths.shown(wanted))' in \(bundles)")
                }
                if !selected.contains(match) { selected.append(match) }
            }
            guard !selected.isEmpty else { throw ChpkiError.input(.rolloutNoHosts, file: nil, field: "--hosts", "no host named") }
        }
        var inputs: [HostInput] = []
        for name in selected.sorted() {
            let manifestPath = "\(bundles)/\(name)/\(BundleManifest.path)"
            let recordPath = "\(state)/\(name).json"
            guard let new = try InstallRecord.read(manifestPath, host: name) else {
                throw ChpkiError.input(.fileMissing, file: manifestPath, field: nil, "missing")
            }
            guard new.format == BundleManifest.currentFormat else {
                throw ChpkiError.input(.manifestUnsupportedFormat, file: manifestPath, field: "format",
                                       "is \(new.format); a rollout needs format \(BundleManifest.currentFormat) (lay the bundles out again with this chpki)")
            }
            let recorded = force ? nil : try InstallRecord.read(recordPath, host: name)
            inputs.append(HostInput(host: name, manifest: manifestPath, record: recordPath, recorded: recorded, new: new))
        }
        let orphans = recordedHosts(state).filter { !trees.contains($0) }.map { Orphan(host: $0, record: "\(state)/\($0).json") }
        return plan(inputs, orphans: orphans, operations: operations)
    }

    /// One host's inputs to the plan.
    struct HostInput {
        var host: String
        var manifest: String
        var record: String
        var recorded: BundleManifest?
        var new: BundleManifest
    }

    /// The plan from checked manifests (the unit tests call this directly).
    static func plan(_ inputs: [HostInput], orphans: [Orphan], operations overrides: OperationsOverrides) -> RolloutPlan {
        var trust: [RolloutStep] = [], leaves: [RolloutStep] = [], cleanup: [RolloutStep] = []
        var hosts: [HostChanges] = []
        var serial = Set<String>()
        for input in inputs.sorted(by: { $0.host < $1.host }) {
            let diff = ManifestDiff(recorded: input.recorded, new: input.new)
            hosts.append(HostChanges(host: input.host, manifest: input.manifest, record: input.record, diff: diff))
            guard !diff.same else { continue }
            let operations = overrides.applied(to: input.new.operations ?? [:], host: input.host)
            serial.formUnion(operations.filter { $0.value.serial }.keys)
            var steps = HostSteps(input: input, diff: diff, operations: operations).steps()
            // The host's last step records it: a failure before leaves it to be installed again.
            if let last = [\HostSteps.Result.cleanup, \.leaves, \.trust].first(where: { steps[keyPath: $0] != nil }) {
                steps[keyPath: last]?.record = true
            }
            if let step = steps.trust { trust.append(step) }
            if let step = steps.leaves { leaves.append(step) }
            if let step = steps.cleanup { cleanup.append(step) }
        }
        // A quorum service none of whose members is recorded is a cluster being formed: its first
        // member can't be healthy alone (etcd waits for a quorum, Patroni for etcd), so its
        // members start one after the other and their health checks all wait after the last.
        let running = Set(inputs.flatMap { $0.recorded?.files.map(\.service) ?? [] })
        for service in serial.subtracting(running) {
            deferHealth(of: service, in: &trust)
            deferHealth(of: service, in: &leaves)
        }
        return RolloutPlan(phases: [RolloutPhase(name: "trust", steps: trust), RolloutPhase(name: "leaves", steps: leaves),
                                    RolloutPhase(name: "cleanup", steps: cleanup)],
                           orphans: orphans, hosts: hosts)
    }

    /// Moves every health check of `service` in `steps` to the last step that runs a command for it.
    /// A host whose checks moved is recorded only once they passed: its own step no longer records
    /// it, a step with nothing to copy or run right after the last one does.
    static func deferHealth(of service: String, in steps: inout [RolloutStep]) {
        guard let last = steps.lastIndex(where: { $0.run.contains { $0.service == service } }) else { return }
        var checks: [HealthCheck] = []
        var recordLater: [String] = []
        for index in steps.indices {
            let moved = steps[index].health.filter { $0.service == service }.map { check in
                var check = check
                if index != last { check.host = steps[index].host }
                return check
            }
            checks += moved
            steps[index].health.removeAll { $0.service == service }
            if index != last, !moved.isEmpty, steps[index].record {
                steps[index].record = false
                recordLater.append(steps[index].host)
            }
        }
        steps[last].health += checks
        steps.insert(contentsOf: recordLater.map { RolloutStep(host: $0, copy: [], remove: [], run: [], health: [], record: true) },
                     at: last + 1)
    }

    /// The host trees in `bundles` (a directory holding var/lib/chpki/MANIFEST.json), in name order;
    /// a tree whose name is not a lower-case host name is refused.
    static func hostTrees(_ bundles: String) throws -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: bundles) else { return [] }
        var names: [String] = []
        for entry in entries.sorted() where !entry.hasPrefix(".") {
            guard (try? FileStatus.of("\(bundles)/\(entry)/\(BundleManifest.path)", followLinks: false))?.kind == .regular else { continue }
            guard HostName.problem(with: entry) == nil, entry == entry.lowercased() else {
                throw ChpkiError.input(.rolloutNotAHostTree, file: "\(bundles)/\(InstallPaths.shown(entry))", field: nil, "not a host name; chpki bundle never lays out such a tree")
            }
            names.append(entry)
        }
        return names
    }

    /// The hosts with a record in `state`: `<fqdn>.json` files (anything else there is not chpki's).
    static func recordedHosts(_ state: String) -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []
        return entries.sorted().compactMap { entry in
            guard entry.hasSuffix(".json"), !entry.hasPrefix(".") else { return nil }
            let host = String(entry.dropLast(5))
            return HostName.problem(with: host) == nil && host == host.lowercased() ? host : nil
        }
    }
}

/// One phase of a rollout: `trust`, `leaves` or `cleanup`.
public struct RolloutPhase: Codable, Sendable, Equatable {
    public var name: String
    public var steps: [RolloutStep]
}

/// One host's part of a phase: copy these files from its tree (relative paths, parents first;
/// owners and modes from its manifest), delete these (absolute paths), run these commands in
/// order, then pass these health checks before the next step starts; `record`: write the host's
/// new manifest as its record once the step succeeded (its last step).
public struct RolloutStep: Codable, Sendable, Equatable {
    public var host: String
    public var copy: [String]
    public var remove: [String]
    public var run: [RolloutCommand]
    public var health: [HealthCheck]
    public var record: Bool
}

/// One command of a step: the service it is for, why (the changed paths), and its argv.
public struct RolloutCommand: Codable, Sendable, Equatable {
    public var service: String
    public var why: [String]
    public var argv: [String]
}

/// One host's steps in the three phases, from its diff and its services' operations.
struct HostSteps {
    struct Result {
        var trust: RolloutStep?
        var leaves: RolloutStep?
        var cleanup: RolloutStep?
    }

    let input: RolloutPlan.HostInput
    let diff: ManifestDiff
    let operations: [String: ServiceOperations]

    /// Format-2 records knew no roles: a removed file of the trust service is still trust.
    private func role(_ entry: ManifestDiff.Entry) -> FileRole? {
        entry.role ?? (entry.service == BundleManifest.trustService ? .trust : nil)
    }

    func steps() -> Result {
        let files = diff.entries.filter { $0.kind == "file" }
        let remaining = Set(input.new.files.map(\.service))
        let recordedPaths = Set(input.recorded?.files.map(\.path) ?? [])

        // Trust: trust files added, changed or removed (a removed one of a service that left the
        // host is no trust change: it goes in cleanup with the service's other files).
        let trustEntries = files.filter { role($0) == .trust && ($0.change != .removed || remaining.contains($0.service)) }
        let trustCopied = trustEntries.filter { $0.change != .removed }.map(\.path)
        let trustRemoved = trustEntries.filter { $0.change == .removed }.map { "/" + $0.path }
        let trustServices = orderedServices(trustEntries).filter(remaining.contains)
        // A service new to the host (or a host never installed from here) runs on_trust now only
        // if it is nothing but trust (the anchors): the others have no leaf yet, and a restart
        // would start them without one; they run on_trust in the leaves step instead (on_trust
        // only, when both changed).
        let servicesWithOwnFiles = Set(input.new.files.filter { $0.role != .trust }.map(\.service))
        let recordedServices = Set(input.recorded?.files.map(\.service) ?? [])
        let trustNow = trustServices.filter { recordedServices.contains($0) || !servicesWithOwnFiles.contains($0) }
        let trustDeferred = trustServices.filter { !trustNow.contains($0) }

        // Leaves: leaf, key and config files added or changed; a bootstrap file only where the
        // host never had it, and never a reason to run anything.
        let leafEntries = files.filter { entry in
            guard entry.change != .removed else { return false }
            switch role(entry) {
            case .trust: return false
            case .bootstrap: return !recordedPaths.contains(entry.path)
            default: return true
            }
        }
        let leafServices = orderedServices(leafEntries.filter { role($0) != .bootstrap }).filter(remaining.contains)

        var result = Result()
        let directories = diff.entries.filter { $0.kind == "directory" && $0.change != .removed }.map(\.path)
        // A directory travels with the first file below it (the tar creates it with its mode).
        func parents(of paths: [String], from pool: inout [String]) -> [String] {
            let taken = pool.filter { directory in paths.contains { $0.hasPrefix(directory + "/") } }
            pool.removeAll { taken.contains($0) }
            return taken
        }
        var directoryPool = directories
        if !trustEntries.isEmpty {
            let copy = (parents(of: trustCopied, from: &directoryPool) + trustCopied).sorted()
            let run = trustNow.flatMap { commands($0, operations[$0]?.onTrust ?? [], entries: trustEntries) }
            // The host's leaves come in its leaves step: until then it rightly serves its old ones.
            result.trust = RolloutStep(host: input.host, copy: copy, remove: trustRemoved, run: run,
                                       health: health(for: trustNow, stillToCome: Set(leafEntries.map(\.path))), record: false)
        }
        let leafCopied = leafEntries.map(\.path)
        var leafRun: [RolloutCommand] = []
        let leavesServices = orderedUnion(trustDeferred, leafServices)
        for service in leavesServices {
            let deferred = trustDeferred.contains(service)
            // A file of unknown role (none in a manifest chpki writes) counts as config: the safer command.
            let config = leafEntries.contains { $0.service == service && (role($0) == .config || role($0) == nil) }
            let argv = operations[service]?.leavesCommands(newToHost: deferred, config: config) ?? []
            leafRun += commands(service, argv, entries: leafEntries + (deferred ? trustEntries : []))
        }
        // The host's own MANIFEST.json travels with its last copy (`verify --installed` reads it).
        let manifestCopy = [BundleManifest.path]
        let leafCopy = (parents(of: leafCopied, from: &directoryPool) + directoryPool + leafCopied).sorted()
        let otherRemoved = files.filter { $0.change == .removed && !trustEntries.contains($0) }.map { "/" + $0.path }
        if !leafCopy.isEmpty || !leafRun.isEmpty || (result.trust == nil && otherRemoved.isEmpty) {
            // Also the step that records a host whose files are as recorded but whose manifest is
            // not (operations changed, a format-2 record): nothing to copy, nothing to run.
            // Every service whose files changed is checked, also one that runs nothing (etcd
            // takes a new leaf by itself: the check proves it serves it).
            result.leaves = RolloutStep(host: input.host, copy: leafCopy, remove: [], run: leafRun,
                                        health: health(for: leavesServices), record: false)
        }
        if !otherRemoved.isEmpty {
            result.cleanup = RolloutStep(host: input.host, copy: [], remove: otherRemoved, run: [], health: [], record: false)
        }
        // The manifest goes with the host's last step that copies anything (else its last step).
        if result.cleanup != nil { result.cleanup?.copy = manifestCopy } else if result.leaves != nil {
            result.leaves?.copy += manifestCopy
        } else { result.trust?.copy += manifestCopy }
        return result
    }

    /// One RolloutCommand per argv, each saying which of the service's paths changed.
    private func commands(_ service: String, _ argvs: [[String]], entries: [ManifestDiff.Entry]) -> [RolloutCommand] {
        let why = entries.filter { $0.service == service }.map { "\($0.path) (\($0.change.rawValue))" }
        return argvs.map { RolloutCommand(service: service, why: why, argv: $0) }
    }

    /// The health checks of every service a step runs a command for, each naming its service.
    /// A check compares the served leaf with the host's file only once the host has that file:
    /// not while it is `stillToCome` (relative paths a later step of the host copies).
    /// `stillToCome`: the files the host gets only in a later step; a check then accepts the leaf
    /// the host still serves.
    private func health(for services: [String], stillToCome: Set<String> = []) -> [HealthCheck] {
        services.flatMap { service in
            (operations[service]?.health ?? []).map { check in
                var check = check
                check.service = service
                if let leaf = check.leaf, stillToCome.contains(String(leaf.dropFirst())) { check.leaf = nil }
                return check
            }
        }
    }

    /// The services of `entries`: trust anchors first, then by name.
    private func orderedServices(_ entries: [ManifestDiff.Entry]) -> [String] {
        let names = Set(entries.map(\.service))
        return names.sorted { ($0 == BundleManifest.trustService ? 0 : 1, $0) < ($1 == BundleManifest.trustService ? 0 : 1, $1) }
    }

    private func orderedUnion(_ first: [String], _ second: [String]) -> [String] {
        let names = Set(first + second)
        return names.sorted { ($0 == BundleManifest.trustService ? 0 : 1, $0) < ($1 == BundleManifest.trustService ? 0 : 1, $1) }
    }
}
