import ChpkiBase
import ChpkiCA
import ChpkiInventory
import ChpkiModel
import ChpkiOpenSSL
import ChpkiSecretBundles
import Foundation

/// Every path chpki lays out on a host, as patterns, learnt from the service descriptors
/// themselves: a probe cluster (every descriptor, a service with minicluster's layout, both frontend
/// flavors, two hosts, a VIP, a root) is laid out with placeholder leaves, and each name the
/// inventory or the CA chooses (host, VIP, service, root) carries `marker`, so the component that
/// holds it becomes a wildcard. Adding a descriptor adds its paths here with no table to edit.
/// A recorded manifest may only name these paths (SPEC §8: recorded rollout state is data): a path
/// chpki never writes, such as `etc/passwd`, is never removed from a host.
public struct InstallPaths: Sendable {
    /// One path shape: its components (a literal, or `prefix*suffix` around a chosen name) and the
    /// service whose file or directory it is (nil: the service is the chosen name, as in
    /// minicluster's `etc/credentials/x509/<service>/`).
    struct Pattern: Hashable, Sendable {
        var components: [Component]
        var service: String?
    }

    enum Component: Hashable, Sendable {
        case literal(String)
        case chosen(prefix: String, suffix: String)
    }

    let files: [Pattern]
    let directories: [Pattern]
    /// Every owner and group a descriptor gives a file or directory (root and the service users).
    let accounts: Set<String>

    /// The text in every name the probe cluster chooses; never part of a fixed path.
    static let marker = "chpkiprobe"

    /// The patterns of this chpki, derived once (again after a descriptor is registered).
    public static func current() throws -> InstallPaths {
        let generation = ServiceBundles.generation
        if let cached = cache.lock.withLock({ cache.generation == generation ? cache.result : nil }) { return try cached.get() }
        let result: Result<InstallPaths, ChpkiError>
        do { result = .success(try probe()) } catch let error as ChpkiError { result = .failure(error) } catch {
            result = .failure(ChpkiError(.internalBug, "cannot derive the paths chpki lays out: \(error)"))
        }
        cache.lock.withLock { (cache.generation, cache.result) = (generation, result) }
        return try result.get()
    }

    private final class Cache: @unchecked Sendable {  // every access under `lock`
        let lock = NSLock()
        var generation = -1
        var result: Result<InstallPaths, ChpkiError>?
    }

    private static let cache = Cache()

    /// The service that may own `path` as a file, or why it is not a path chpki lays out.
    func fileProblem(_ path: String, service: String) -> String? { problem(path, service: service, in: files, kind: "file") }

    func directoryProblem(_ path: String, service: String) -> String? {
        problem(path, service: service, in: directories, kind: "directory")
    }

    private func problem(_ path: String, service: String, in patterns: [Pattern], kind: String) -> String? {
        guard BundleManifest.isSafe(path) else { return "'\(Self.shown(path))' is not a relative path inside the root" }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let shapes = patterns.filter { $0.components.count == parts.count && zip($0.components, parts).allSatisfy(Self.matches) }
        guard !shapes.isEmpty else { return "'\(Self.shown(path))' is not a \(kind) chpki lays out" }
        guard shapes.contains(where: { $0.service == nil || $0.service == service }) else {
            return "'\(Self.shown(path))' belongs to \(shapes.compactMap(\.service).joined(separator: " or ")), not to '\(Self.shown(service))'"
        }
        return nil
    }

    private static func matches(_ component: Component, _ part: String) -> Bool {
        switch component {
        case let .literal(text): return text == part
        case let .chosen(prefix, suffix):
            guard part.count > prefix.count + suffix.count, part.hasPrefix(prefix), part.hasSuffix(suffix) else { return false }
            return isChosenName(part.dropFirst(prefix.count).dropLast(suffix.count))
        }
    }

    /// What a host, VIP, service or root name can put in a path: lower-case DNS text
    /// (`a-z`, `0-9`, `-`, `.`), starting with a letter or digit, never `..`.
    static func isChosenName<S: StringProtocol>(_ name: S) -> Bool {
        guard let first = name.unicodeScalars.first, isAlphanumeric(first), !name.contains("..") else { return false }
        return name.unicodeScalars.allSatisfy { isAlphanumeric($0) || $0 == "-" || $0 == "." }
    }

    private static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool { ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) }

    /// A path or name from a file, safe to print on one line.
    package static func shown(_ text: String) -> String {
        let limited = text.count > 200 ? String(text.prefix(200)) + "…" : text
        return limited.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined()
    }

    // MARK: - The probe

    static func pattern(_ path: String, service: String) -> Pattern {
        let components = path.split(separator: "/", omittingEmptySubsequences: false).map { part -> Component in
            let text = String(part)
            guard let first = text.range(of: marker), let last = text.range(of: marker, options: .backwards) else { return .literal(text) }
            return .chosen(prefix: String(text[..<first.lowerBound]), suffix: String(text[last.upperBound...]))
        }
        return Pattern(components: components, service: service.contains(marker) ? nil : service)
    }

    private static func probe() throws -> InstallPaths {
        let inventory = try Inventory.parse(yaml: probeInventory(), path: "chpki's probe cluster")
        let key = try PrivateKey.generate(.ed25519)
        let root = try CertificateTemplate(
            subject: DistinguishedName([.init("CN", marker)]), serial: SerialNumber(bytes: [1]),
            notBefore: Date(timeIntervalSince1970: 1_700_000_000), notAfter: Date(timeIntervalSince1970: 1_800_000_000),
            certificateAuthority: .init(), keyUsage: [.keyCertSign, .cRLSign]
        ).sign(publicKeyOf: key, by: Signer(certificate: nil, key: key)).pemEncoded()
        var leaves: [CertificateIdentity: BundleInputs.Leaf] = [:]
        for profile in NamingRules.profiles(for: inventory) {
            let placeholder = Data("\(profile.identity)\n".utf8)
            leaves[profile.identity] = .init(certificatePEM: placeholder, keyPEM: SecretBytes(placeholder), chainPEM: placeholder,
                                             notBefore: Date(timeIntervalSince1970: 1_700_000_000))
        }
        let inputs = BundleInputs(roots: [root], intermediates: [], leaves: leaves, caSHA256: String(repeating: "0", count: 64),
                                  caCreated: Date(timeIntervalSince1970: 1_700_000_000))
        // Built-in templates only: an override changes what a file holds, never where it goes.
        let templates = try Templates(explicit: nil, environment: [:], systemDirectory: "")
        var files = Set<Pattern>(), directories = Set<Pattern>(), accounts = Set<String>()
        for flavor in FrontendFlavor.allCases {
            let facts = ClusterFacts(inventory: inventory, inputs: inputs, templates: templates, flavor: flavor)
            let plan = try BundlePlan(facts: facts, services: inventory.services, minicluster: true)
            for host in plan.hosts {
                let bundle = try plan.bundle(for: host)
                files.formUnion(bundle.files.map { pattern($0.path, service: $0.service) })
                directories.formUnion(bundle.directories.map { pattern($0.path, service: $0.service) })
                accounts.formUnion(bundle.files.flatMap { [$0.owner, $0.group] } + bundle.directories.flatMap { [$0.owner, $0.group] })
            }
        }
        return InstallPaths(files: Array(files), directories: Array(directories), accounts: accounts)
    }

    /// Two hosts running every service with a layout of its own, and one without (minicluster's),
    /// clients and the admin certificate on, a VIP for HAProxy: every file a descriptor can lay out.
    private static func probeInventory() -> String {
        // Each chosen name starts and ends with the marker, so the wildcard covers all of it.
        let chosen = { (name: String) in "\(marker)\(name)\(marker)" }
        let services = ServiceBundles.all.map(\.name) + [chosen("service")]
        return """
            domain: \(marker)
            subject: {O: chpki}
            hosts:
              - {name: \(chosen("a")).\(marker), ips: [10.0.0.1], groups: [all]}
              - {name: \(chosen("b")).\(marker), ips: [10.0.0.2], groups: [all]}
            vips:
              - {name: \(chosen("vip")), ips: [10.0.0.100]}
            services:
            \(services.map { "  \($0): {hosts: all, enable_client: true}" }.joined(separator: "\n"))
            admin:
              name: admin

            """
    }
}
