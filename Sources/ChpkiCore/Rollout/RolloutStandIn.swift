import Foundation

// TEMPORARY (branch rolloutexec): the typed plan of the rollout contract, until branch `rollout`
// commits it. Deleted when `rollout` is merged; nothing here is the executor's.

public struct RolloutCommand: Codable, Sendable, Equatable {
    public var service: String
    public var why: [String]
    public var argv: [String]

    public init(service: String, why: [String], argv: [String]) {
        self.service = service
        self.why = why
        self.argv = argv
    }
}

public struct HealthCheck: Codable, Sendable, Equatable {
    public var kind: String
    public var address: String
    public var port: Int
    public var serverName: String
    public var cafile: String
    public var certfile: String?
    public var keyfile: String?

    enum CodingKeys: String, CodingKey {
        case kind, address, port, cafile, certfile, keyfile
        case serverName = "server_name"
    }
}

public struct RolloutStep: Codable, Sendable, Equatable {
    public var host: String
    public var copy: [String]
    public var remove: [String]
    public var run: [RolloutCommand]
    public var health: [HealthCheck]
    public var record: Bool
}

public struct RolloutPhase: Codable, Sendable, Equatable {
    public var name: String
    public var steps: [RolloutStep]
}

extension RolloutPlan {
    /// The contract's entry point; operations are not read by the stand-in.
    public static func make(bundles: String, state: String, only: [String], force: Bool, operations: String?) throws -> RolloutPlan {
        try make(bundles: bundles, state: state, only: only, force: force)
    }

    /// One `leaves` phase, a step per host that changed: its added and changed files, its removals.
    public var phases: [RolloutPhase] {
        let steps = hosts.filter(\.install).map { host in
            RolloutStep(host: host.host,
                        copy: host.changes.filter { $0.change != .removed }.map(\.path) + [BundleManifest.path],
                        remove: host.remove, run: [], health: [], record: true)
        }
        return steps.isEmpty ? [] : [RolloutPhase(name: "leaves", steps: steps)]
    }
}
