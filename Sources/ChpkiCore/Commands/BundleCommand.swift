import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `chpki bundle`: the files each service expects, per host, from the CA database.
public enum BundleCommand {
    public struct Options: Sendable {
        public var services: [String] = []
        public var host: String?
        public var output: String = ""
        public var tar = false
        public var flavor: FrontendFlavor = .cinc
        public var templates: String?
        public var passphraseFile: String?
        public init() {}
    }

    struct Report: Encodable {
        struct HostLine: Encodable {
            var host: String
            var services: [String]
            var files: Int
            var tree: String
            var archive: String?
        }

        var out: String
        var hosts: [HostLine]
        var removed: [String]
    }

    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws {
        let inventory = try settings.requireInventory()
        let templates = try Templates(explicit: options.templates, environment: settings.environment)
        let (services, minicluster) = try selectServices(options.services, inventory: inventory)
        let hosts = try selectHosts(options.host, services: services, inventory: inventory)
        // The one place bundles get the CA from: its roots, intermediates, and valid leaves with their keys.
        let session = try settings.openCA(.read, passphraseFile: options.passphraseFile, reporter: reporter)
        let now = session.now
        try checkIssued(inventory: inventory, leaves: try session.validLeaves(), now: now, reporter: reporter)
        let leaves = try session.validLeavesWithKeys()
        let context = BundleLayout.Context(
            inventory: inventory, roots: try session.trustedRoots.map { try $0.pemEncoded() },
            intermediates: session.intermediates,
            leaves: Dictionary(leaves.map { ($0.certificate.identity, $0) }, uniquingKeysWith: { first, _ in first }),
            templates: templates, flavor: options.flavor)
        let fingerprint = session.root.fingerprintSHA256
        var bundles: [HostBundle] = []
        let progress = reporter.progress(total: hosts.count, label: "laying out hosts")
        defer { progress.finish() }
        for host in hosts {
            defer { progress.advance() }
            let hostServices = services.filter { inventory.hosts(of: $0).contains { $0.name == host.name } }
            let files = try BundleLayout.files(for: host, services: hostServices, minicluster: minicluster, context: context)
            bundles.append(HostBundle(host: host.name, services: hostServices.map(\.name) + (minicluster ? [BundleLayout.minicluster] : []),
                                      files: files, caFingerprint: fingerprint))
        }

        try OutputDirectory.prepare(options.output)
        // Two bundle runs on one --out: the second waits for the first.
        let outputLock = try BundleWriter.lockOutput(options.output) {
            reporter.progress("waiting for another chpki writing bundles into \(options.output)")
        }
        defer { withExtendedLifetime(outputLock) {} }
        var lines: [Report.HostLine] = []
        for bundle in bundles {
            let written = try BundleWriter.write(bundle, to: options.output, tar: options.tar, now: now)
            lines.append(.init(host: bundle.host, services: bundle.services, files: bundle.files.count, tree: written.tree, archive: written.archive))
        }
        var removed: [String] = []
        if options.host == nil && options.services.isEmpty {
            removed = try BundleWriter.removeStale(in: options.output, keeping: Set(bundles.map(\.host)))
        }
        try reporter.emit(Report(out: options.output, hosts: lines, removed: removed))
        let rows = lines.map { [$0.host, "\($0.files)", $0.services.joined(separator: ", "), $0.archive ?? ""] }
        reporter.line(Table.render(header: ["HOST", "FILES", "SERVICES", "ARCHIVE"], rows: rows))
        for host in removed { reporter.line("removed the tree of \(host), no longer in the inventory") }
        reporter.line("wrote \(lines.count) host trees to \(options.output) (each with MANIFEST.json)")
    }

    /// The named services (default all), with `minicluster` as a layout switch rather than a service.
    static func selectServices(_ names: [String], inventory: Inventory) throws -> ([Service], Bool) {
        guard !names.isEmpty else { return (inventory.services, false) }
        var services: [Service] = []
        var minicluster = false
        for name in names {
            if name == BundleLayout.minicluster {
                minicluster = true
            } else if let service = inventory.service(named: name) {
                services.append(service)
            } else {
                throw ChpkiError.input(file: inventory.path, field: "SERVICE",
                    "'\(name)' is not a service of the inventory (\(inventory.services.map(\.name).joined(separator: ", ")), or minicluster)")
            }
        }
        return (services.isEmpty ? inventory.services : services, minicluster)
    }

    static func selectHosts(_ name: String?, services: [Service], inventory: Inventory) throws -> [Host] {
        let running = inventory.hosts.filter { host in services.contains { inventory.hosts(of: $0).contains { $0.name == host.name } } }
        guard let name else { return running }
        guard let host = inventory.host(named: name) else {
            throw ChpkiError.input(file: inventory.path, field: "--host", "'\(name)' is not a host of the inventory")
        }
        guard running.contains(where: { $0.name == host.name }) else {
            throw ChpkiError.input(file: inventory.path, field: "--host", "\(host.name) runs none of \(services.map(\.name).joined(separator: ", "))")
        }
        return [host]
    }

    /// Bundles ship what the inventory says: certificates missing or out of date are refused, due ones noted.
    static func checkIssued(inventory: Inventory, leaves: [IssuedCertificate], now: Date, reporter: Reporter) throws {
        let plan = IssuancePlan(profiles: NamingRules.profiles(for: inventory), existing: leaves, now: now)  // issuer changes are fine during a rotation
        let pending = plan.items.filter { $0.action == .issued || $0.action == .reissued }
        if let first = pending.first {
            throw ChpkiError.input(file: inventory.path, field: first.profile.identity.host ?? first.profile.identity.name,
                "\(pending.count) certificate(s) missing or out of date (first: \(first.profile.identity.service ?? "") \(first.profile.identity.name), \(first.reason)); run 'chpki issue' first")
        }
        let due = plan.items.filter { $0.action == .renewed }
        if !due.isEmpty { reporter.note("\(due.count) certificate(s) are due for renewal: run 'chpki renew'") }
    }
}
