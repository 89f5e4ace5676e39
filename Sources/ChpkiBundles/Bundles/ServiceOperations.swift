import ChpkiBase
import ChpkiModel
import Foundation

/// What a host must run for one service when its files change, and how to tell it serves again
/// (SPEC §7 "Deployment"): defined by the service's descriptor (`ServiceBundle.operations`),
/// carried per service in MANIFEST.json (`operations`), replaced key by key by a site's
/// operations file (`OperationsOverrides`). Commands are argv arrays: nothing here is ever a
/// shell string, so no value from a manifest or a record is parsed by a shell.
public struct ServiceOperations: Codable, Sendable, Equatable {
    /// Run, in order, when a leaf, key or config file of the service changed.
    public var onLeaf: [[String]]
    /// Run instead of `onLeaf` when a config file of the service changed (with or without a leaf):
    /// for a server that rereads its certificate by itself but its settings only at start (etcd
    /// needs nothing for a new leaf, a restart for a new `tls.env`). Nil: `onLeaf` covers config.
    public var onConfig: [[String]]?
    /// Run, in order, when a trust file of the service changed (instead of `onLeaf` when both did):
    /// a restart where the server never rereads its CA file (etcd, MinIO's CAs/).
    public var onTrust: [[String]]
    /// Run instead of `onTrust` where the service is new to the host (it starts with every file in
    /// place): for a service whose trust change is more than a restart (Patroni's pauses the
    /// cluster's failover around it, which needs a running cluster). Nil: `onTrust` starts it.
    public var onStart: [[String]]?
    /// A quorum service: one host at a time, each healthy before the next.
    public var serial: Bool
    /// Proves the service serves again with its new files.
    public var health: [HealthCheck]

    enum CodingKeys: String, CodingKey {
        case onLeaf = "on_leaf", onConfig = "on_config", onTrust = "on_trust", onStart = "on_start", serial, health
    }

    public init(onLeaf: [[String]] = [], onConfig: [[String]]? = nil, onTrust: [[String]] = [], onStart: [[String]]? = nil,
                serial: Bool = false, health: [HealthCheck] = []) {
        self.onLeaf = onLeaf
        self.onConfig = onConfig
        self.onStart = onStart
        self.onTrust = onTrust
        self.serial = serial
        self.health = health
    }

    /// A layout without a running service (minicluster's files, a toy): nothing to run.
    public static let none = ServiceOperations()

    /// What a host's leaves step runs for the service: where the service is new to the host,
    /// on_start, else on_trust (it starts with every file in place; a site that emptied on_trust
    /// gets the rest); else on_config when a config file changed; else on_leaf. (A trust step
    /// runs on_trust as it is.)
    package func leavesCommands(newToHost: Bool, config: Bool) -> [[String]] {
        if newToHost, let onStart { return onStart }
        if newToHost, !onTrust.isEmpty { return onTrust }
        if config, let onConfig { return onConfig }
        return onLeaf
    }

    /// `systemctl ACTION UNIT` as argv.
    public static func systemctl(_ action: String, _ unit: String) -> [String] { ["systemctl", action, unit] }

    /// A service chpki has no descriptor for (minicluster's layout): reload if its unit can,
    /// restart on a trust change (whether it rereads its CA file is unknown).
    public static func generic(_ unit: String) -> ServiceOperations {
        ServiceOperations(onLeaf: [systemctl("reload-or-restart", unit)], onTrust: [systemctl("restart", unit)])
    }

    /// Why `argv` may not be run (nil: fine). Every word is passed as is to the command (and
    /// quoted word by word for a remote shell by the executor), so the rules only keep a record
    /// readable on one line: a command has a word, no word is empty or holds a control character.
    package static func problem(argv: [String]) -> String? {
        guard let first = argv.first else { return "is an empty command" }
        guard argv.count <= 64 else { return "has \(argv.count) words; at most 64" }
        if first.isEmpty { return "names no program" }
        for (index, word) in argv.enumerated() {
            if word.utf8.count > 4096 { return "word \(index) is longer than 4096 bytes" }
            if word.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                return "word \(index) holds a control character"
            }
        }
        return nil
    }

    /// Every field against the rules, `refuse(field, reason)` making the error (`at` prefixes the field).
    func check(at: String, refuse: (String, String) -> ChpkiError) throws {
        for (key, commands) in [("on_leaf", onLeaf), ("on_config", onConfig ?? []), ("on_trust", onTrust), ("on_start", onStart ?? [])] {
            guard commands.count <= 16 else { throw refuse("\(at).\(key)", "has \(commands.count) commands; at most 16") }
            for (index, argv) in commands.enumerated() {
                if let problem = Self.problem(argv: argv) { throw refuse("\(at).\(key)[\(index)]", problem) }
            }
        }
        guard health.count <= 16 else { throw refuse("\(at).health", "has \(health.count) checks; at most 16") }
        for (index, check) in health.enumerated() {
            if let (field, problem) = check.problem() { throw refuse("\(at).health[\(index)].\(field)", problem) }
        }
    }
}

/// One health check of a service on a host, run by the executor from the controller (SPEC §7).
/// In MANIFEST.json and in a rollout plan alike; the plan adds the service it belongs to.
public struct HealthCheck: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A TLS handshake verified against `cafile` (with the client certificate when given).
        case tls
        /// `GET /health` over TLS answers {"health":"true"}.
        case etcd
        /// Patroni's REST API `GET /health` answers 200.
        case patroniREST = "patroni-rest"
        /// PostgreSQL's SSLRequest, then a TLS handshake with the client certificate.
        case postgres
    }

    public var kind: Kind
    /// Where to connect: the host's (or the VIP's) address.
    public var address: String
    public var port: Int
    /// The name the server's certificate must carry (SNI and verification).
    public var serverName: String
    /// Absolute paths on the host; the executor uses the bundle's copy of each.
    public var cafile: String
    public var certfile: String?
    public var keyfile: String?
    /// The file (absolute path on the host) whose first certificate the server must present: the
    /// check then proves the service serves the files the step installed, not only that it
    /// answers (a service that kept its old certificate is "stale"). A plan leaves it out of a
    /// step that runs before the host gets that file (a trust step while the leaf is still to come).
    public var leaf: String?
    /// The service checked (in a plan; implied by the key in a manifest).
    public var service: String?
    /// In a plan, the host whose service this checks when it is not the step's own: a forming
    /// cluster's checks all wait in the step of its last member (`RolloutPlan.deferHealth`).
    public var host: String?

    enum CodingKeys: String, CodingKey {
        case kind, address, port, cafile, certfile, keyfile, leaf, service, host
        case serverName = "server_name"
    }

    public init(_ kind: Kind, address: String, port: Int, serverName: String, cafile: String, certfile: String? = nil,
                keyfile: String? = nil, leaf: String? = nil, service: String? = nil) {
        self.kind = kind
        self.address = address
        self.port = port
        self.serverName = serverName
        self.cafile = cafile
        self.certfile = certfile
        self.keyfile = keyfile
        self.leaf = leaf
        self.service = service
    }

    /// The field that is wrong and why, or nil.
    package func problem() -> (String, String)? {
        guard (1...65535).contains(port) else { return ("port", "is \(port), not a TCP port") }
        guard !address.isEmpty, address.utf8.count <= 253, address.unicodeScalars.allSatisfy(Self.isAddressCharacter) else {
            return ("address", "'\(InstallPaths.shown(address))' is not a host name or IP address")
        }
        guard !serverName.isEmpty, serverName.utf8.count <= 253, serverName.unicodeScalars.allSatisfy(Self.isAddressCharacter) else {
            return ("server_name", "'\(InstallPaths.shown(serverName))' is not a host name or IP address")
        }
        for (field, path) in [("cafile", cafile), ("certfile", certfile), ("keyfile", keyfile), ("leaf", leaf)] {
            guard let path else { continue }
            guard path.hasPrefix("/"), BundleManifest.isSafe(String(path.dropFirst())) else {
                return (field, "'\(InstallPaths.shown(path))' is not an absolute path without . or .. components")
            }
        }
        if (certfile == nil) != (keyfile == nil) { return (certfile == nil ? "certfile" : "keyfile", "certfile and keyfile go together") }
        if let service, ServiceName.problem(with: service) != nil { return ("service", "'\(InstallPaths.shown(service))' is not a service name") }
        if let host, HostName.problem(with: host) != nil { return ("host", "'\(InstallPaths.shown(host))' is not a host name") }
        return nil
    }

    private static func isAddressCharacter(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "-.:_".unicodeScalars.contains(scalar))
    }
}
