import ChpkiBase
import ChpkiBundles
import ChpkiModel
import ChpkiPlatform
import Foundation
import Yams

/// A site's operations file (`--operations FILE`, YAML): per service, any of `on_leaf`, `on_config`,
/// `on_trust`, `on_start`, `serial`, `health`, each replacing the descriptor's value that MANIFEST.json carries. The
/// defaults live only in the Swift descriptors; this file only says where a site differs (a RHEL
/// host's `update-ca-trust extract`, OpenSearch's hot reload API, another port).
///
///     trust:
///       on_trust: [[update-ca-trust, extract]]
///     opensearch:
///       on_leaf: [[curl, --cert, /etc/opensearch/admin.pem, ...]]
///       health: [{kind: tls, port: 9201}]
///
/// A health check may leave out `address` and `server_name` (each host's name) and `cafile` (the
/// first one the descriptor gave) and `leaf` (the descriptor's, when all its checks name one and
/// the same). The file is read with a size limit and every field is checked;
/// a refusal names the file and the field (exit 2), and nothing is planned.
public struct OperationsOverrides: Sendable, Equatable {
    public struct Override: Sendable, Equatable {
        public var onLeaf: [[String]]?
        public var onConfig: [[String]]?
        public var onStart: [[String]]?
        public var onTrust: [[String]]?
        public var serial: Bool?
        public var health: [PartialHealthCheck]?
    }

    /// A health check as a site writes it: the fields it leaves out come from the host.
    public struct PartialHealthCheck: Sendable, Equatable {
        public var kind: HealthCheck.Kind
        public var port: Int
        public var address: String?
        public var serverName: String?
        public var cafile: String?
        public var certfile: String?
        public var keyfile: String?
        public var leaf: String?
    }

    public var services: [String: Override]

    public init(services: [String: Override] = [:]) { self.services = services }

    /// A few hundred lines at most; anything bigger is not an operations file.
    public static let sizeLimit = 256 * 1024

    public static func read(_ path: String) throws -> OperationsOverrides {
        switch RegularFile.read(path, limit: sizeLimit) {
        case let .success((data, _)): return try parse(data, label: path)
        case .failure(.missing): throw ChpkiError.input(.fileMissing, file: path, field: nil, "missing")
        case let .failure(.notRegular(kind)): throw ChpkiError.input(.fileUnreadable, file: path, field: nil, "is a \(kind), not a file")
        case let .failure(failure): throw ChpkiError.input(.fileUnreadable, file: path, field: nil, failure.reason)
        }
    }

    public static func parse(_ data: Data, label: String) throws -> OperationsOverrides {
        func refuse(_ field: String?, _ reason: String) -> ChpkiError { ChpkiError.input(.rolloutInvalidOperations, file: label, field: field, reason) }
        guard data.count <= sizeLimit else { throw refuse(nil, "is larger than \(sizeLimit) bytes") }
        guard let text = String(data: data, encoding: .utf8) else { throw refuse(nil, "is not UTF-8 text") }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw refuse(nil, "not valid YAML") }
        guard let node else { return OperationsOverrides() }
        guard let top = node.mapping else { throw refuse(nil, "is not a mapping of service names") }
        var services: [String: Override] = [:]
        for (key, value) in top {
            guard let service = key.scalar?.string, ServiceName.problem(with: service) == nil else {
                throw refuse(nil, "'\(InstallPaths.shown(key.scalar?.string ?? "?"))' is not a service name")
            }
            guard services[service] == nil else { throw refuse(service, "is given twice") }
            guard let fields = value.mapping else { throw refuse(service, "is not a mapping of on_leaf, on_config, on_trust, on_start, serial, health") }
            var override = Override()
            for (fieldKey, fieldValue) in fields {
                let name = fieldKey.scalar?.string ?? "?"
                let at = "\(service).\(name)"
                switch name {
                case "on_leaf": override.onLeaf = try commands(fieldValue, at: at, refuse: refuse)
                case "on_config": override.onConfig = try commands(fieldValue, at: at, refuse: refuse)
                case "on_start": override.onStart = try commands(fieldValue, at: at, refuse: refuse)
                case "on_trust": override.onTrust = try commands(fieldValue, at: at, refuse: refuse)
                case "serial":
                    guard let flag = fieldValue.scalar.flatMap(Bool.construct) else { throw refuse(at, "is not true or false") }
                    override.serial = flag
                case "health": override.health = try healthChecks(fieldValue, at: at, refuse: refuse)
                default: throw refuse(at, "unknown; a service takes on_leaf, on_config, on_trust, on_start, serial and health")
                }
            }
            services[service] = override
        }
        return OperationsOverrides(services: services)
    }

    private static func commands(_ node: Node, at: String, refuse: (String?, String) -> ChpkiError) throws -> [[String]] {
        guard let list = node.sequence else { throw refuse(at, "is not a list of commands (each a list of words)") }
        guard list.count <= 16 else { throw refuse(at, "has \(list.count) commands; at most 16") }
        return try list.enumerated().map { index, item in
            guard let words = item.sequence else { throw refuse("\(at)[\(index)]", "is not a list of words (argv: no shell parses it)") }
            let argv = try words.enumerated().map { wordIndex, word -> String in
                guard let text = word.scalar?.string else { throw refuse("\(at)[\(index)][\(wordIndex)]", "is not a word") }
                return text
            }
            if let problem = ServiceOperations.problem(argv: argv) { throw refuse("\(at)[\(index)]", problem) }
            return argv
        }
    }

    private static func healthChecks(_ node: Node, at: String, refuse: (String?, String) -> ChpkiError) throws -> [PartialHealthCheck] {
        guard let list = node.sequence else { throw refuse(at, "is not a list of checks") }
        guard list.count <= 16 else { throw refuse(at, "has \(list.count) checks; at most 16") }
        return try list.enumerated().map { index, item in
            let here = "\(at)[\(index)]"
            guard let fields = item.mapping else { throw refuse(here, "is not a mapping (kind, port, ...)") }
            var values: [String: String] = [:]
            for (key, value) in fields {
                let name = key.scalar?.string ?? "?"
                guard ["kind", "port", "address", "server_name", "cafile", "certfile", "keyfile", "leaf"].contains(name) else {
                    throw refuse("\(here).\(name)", "unknown; a check takes kind, port, address, server_name, cafile, certfile, keyfile, leaf")
                }
                guard let text = value.scalar?.string else { throw refuse("\(here).\(name)", "is not a single value") }
                values[name] = text
            }
            guard let kindText = values["kind"] else { throw refuse("\(here).kind", "missing") }
            guard let kind = HealthCheck.Kind(rawValue: kindText) else {
                throw refuse("\(here).kind", "'\(InstallPaths.shown(kindText))' is not one of \(HealthCheck.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let portText = values["port"] else { throw refuse("\(here).port", "missing") }
            guard let port = Int(portText) else { throw refuse("\(here).port", "'\(InstallPaths.shown(portText))' is not a number") }
            let partial = PartialHealthCheck(kind: kind, port: port, address: values["address"], serverName: values["server_name"],
                                             cafile: values["cafile"], certfile: values["certfile"], keyfile: values["keyfile"],
                                             leaf: values["leaf"])
            // Checked as a whole once the host fills the gaps, with placeholders here.
            let probe = partial.resolved(host: "host.invalid", defaultCAFile: "/x", defaultLeaf: nil)
            if let (field, problem) = probe.problem() { throw refuse("\(here).\(field)", problem) }
            return partial
        }
    }

    /// `operations` (from a host's new manifest) with this file's keys replacing theirs.
    public func applied(to operations: [String: ServiceOperations], host: String) -> [String: ServiceOperations] {
        var out = operations
        for (service, override) in services {
            guard var ops = out[service] else { continue }  // not on this host
            // A site's on_leaf is what runs for leaf, key and config alike unless it also gives
            // on_config: the descriptor's on_config refines the on_leaf it replaces.
            if let onLeaf = override.onLeaf { ops.onLeaf = onLeaf; ops.onConfig = nil }
            if let onConfig = override.onConfig { ops.onConfig = onConfig }
            // Likewise a site's on_trust starts a service new to a host unless it gives on_start.
            if let onTrust = override.onTrust { ops.onTrust = onTrust; ops.onStart = nil }
            if let onStart = override.onStart { ops.onStart = onStart }
            if let serial = override.serial { ops.serial = serial }
            if let health = override.health {
                let defaultCAFile = ops.health.first?.cafile ?? "/\(TrustBundle.debianAnchors)"
                // The leaf a replaced check compares with: the descriptor's, when all its checks
                // name the same one (a balancer serving several VIPs has one per VIP: none).
                let leaves = Set(ops.health.map(\.leaf))
                let defaultLeaf = leaves.count == 1 ? leaves.first ?? nil : nil
                ops.health = health.map { $0.resolved(host: host, defaultCAFile: defaultCAFile, defaultLeaf: defaultLeaf) }
            }
            out[service] = ops
        }
        return out
    }
}

extension OperationsOverrides.PartialHealthCheck {
    func resolved(host: String, defaultCAFile: String, defaultLeaf: String?) -> HealthCheck {
        HealthCheck(kind, address: address ?? host, port: port, serverName: serverName ?? host, cafile: cafile ?? defaultCAFile,
                    certfile: certfile, keyfile: keyfile, leaf: leaf ?? defaultLeaf)
    }
}
