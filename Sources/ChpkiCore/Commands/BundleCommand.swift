import Foundation

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
        /// The install records (`<fqdn>.json` per host); nil: `<ca-dir>/installed`.
        public var state: String?
        public init() {}
    }

    struct Report: Encodable {
        struct HostLine: Encodable {
            var host: String
            var services: [String]
            var files: Int
            var tree: String
            var archive: String?
            var changed: Bool
        }

        var out: String
        var hosts: [HostLine]
        var removed: [String]
    }

    /// The directory of install records when `--state` names none.
    public static func defaultState(settings: Settings) -> String { Path.join(settings.caDirectory.path, "installed") }

    /// Lays out the bundles; returns the membership steps (etcdctl member add/remove, in order) the
    /// operator must take around the rollout, for the `next:` lines.
    @discardableResult
    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws -> [String] {
        let inventory = try settings.requireInventory()
        let templates = try Templates(explicit: options.templates, environment: settings.environment)
        let (services, minicluster) = try selectServices(options.services, inventory: inventory)
        // The session lives for this statement only, as when BundleInputs opened it: the lock is
        // not held while the bundles are written.
        let inputs = try BundleInputs.load(from: try settings.openCA(.read, passphraseFile: options.passphraseFile, reporter: reporter),
                                           inventory: inventory, reporter: reporter)
        // Who already runs what (membership of etcd and MinIO pools) comes from the install records.
        let installed = try InstalledServices.load(directory: options.state ?? defaultState(settings: settings), previousOutput: options.output)
        let facts = ClusterFacts(inventory: inventory, inputs: inputs, templates: templates, flavor: options.flavor, installed: installed)
        let only = try options.host.map { try selectHost($0, services: services, facts: facts) }
        let plan = try BundlePlan(facts: facts, services: services, minicluster: minicluster, only: only)

        try OutputDirectory.prepare(options.output)
        // Two bundle runs on one --out: the second waits for the first.
        let outputLock = try BundleWriter.lockOutput(options.output) {
            reporter.progress("waiting for another chpki writing bundles into \(options.output)")
        }
        defer { withExtendedLifetime(outputLock) {} }
        let progress = reporter.progress(total: plan.hosts.count, label: "laying out hosts")
        let written = try BundleWriter.write(plan, to: options.output, tar: options.tar) { _, _ in progress.advance() }
        progress.finish()
        let lines = written.map { Report.HostLine(host: $0.host, services: $0.services, files: $0.files, tree: $0.tree, archive: $0.archive,
                                                  changed: $0.changed) }
        var removed: [String] = []
        if options.host == nil && options.services.isEmpty {
            removed = try BundleWriter.removeStale(in: options.output, keeping: Set(lines.map(\.host)))
        }
        try reporter.emit(Report(out: options.output, hosts: lines, removed: removed))
        let rows = lines.map { [$0.host, "\($0.files)", $0.services.joined(separator: ", "), $0.archive ?? ""] }
        reporter.table(header: ["HOST", "FILES", "SERVICES", "ARCHIVE"], rows: rows)
        for host in removed { reporter.line("removed the tree of \(host), no longer in the inventory") }
        // The built-in templates pass every snippet rule (SnippetRulesTests); an override may not:
        // say so now rather than first at `verify --bundle`.
        if templates.overrideDirectory != nil {
            for line in written {
                let tree = TreeFiles(root: line.tree, label: line.host)
                for (path, finding) in Snippet.findings(in: tree, services: line.services) {
                    reporter.note("warning: \(tree.display(path))\(finding.line > 0 ? ":\(finding.line)" : ""): \(finding.rule) ('chpki verify --bundle' fails on it)")
                }
            }
        }
        let unchanged = lines.filter { !$0.changed }.count
        reporter.line("wrote \(lines.count - unchanged) host trees to \(options.output) (each with \(BundleManifest.path))"
                      + (unchanged > 0 ? "; \(unchanged) already held exactly these files and were kept" : ""))
        return membershipSteps(services: services, facts: facts)
    }

    /// etcd's `member remove`/`member add` commands for this run's growth, in the order to run them.
    /// etcd's, then MinIO's: a new pool means every server restarts together.
    static func membershipSteps(services: [Service], facts: ClusterFacts) -> [String] {
        var steps: [String] = []
        if let etcd = services.first(where: { $0.name == EtcdBundle().name }) {
            let membership = EtcdMembership(hosts: facts.hosts(of: etcd), installed: facts.installed, service: etcd.name)
            let client = EtcdBundle.clientFiles(etcd)
            steps += membership.steps(clientCertificate: client.certificate, clientKey: client.key)
        }
        if let minio = services.first(where: { $0.name == MinIOBundle().name }), let pools = minio.pools {
            let running = pools.filter { $0.contains { facts.installed.runs($0, minio.name) } }
            let new = pools.count - running.count
            if !running.isEmpty && new > 0 {
                let servers = pools.reduce(0) { $0 + $1.count }
                steps.append("install minio.tls on all \(servers) MinIO servers, then restart MinIO on all of them at once    "
                             + "# \(new) new pool(s) in MINIO_VOLUMES: every server of every pool must start with the same list")
            }
        }
        return steps
    }

    /// The named services (default all), with `minicluster` as a layout switch rather than a service.
    static func selectServices(_ names: [String], inventory: Inventory) throws -> ([Service], Bool) {
        guard !names.isEmpty else { return (inventory.services, false) }
        var wanted = Set<String>()
        var minicluster = false
        for name in names {
            if name == ServiceBundles.minicluster {
                minicluster = true
            } else if inventory.service(named: name) != nil {
                wanted.insert(name)
            } else {
                throw ChpkiError.input(.inventoryUnknownService, file: inventory.path, field: "SERVICE",
                    "'\(name)' is not a service of the inventory (\(inventory.services.map(\.name).joined(separator: ", ")), or minicluster)")
            }
        }
        return (wanted.isEmpty ? inventory.services : inventory.services.filter { wanted.contains($0.name) }, minicluster)
    }

    static func selectHost(_ name: String, services: [Service], facts: ClusterFacts) throws -> Host {
        let inventory = facts.inventory
        guard let host = inventory.host(named: name) else {
            throw ChpkiError.input(.inventoryUnknownHost, file: inventory.path, field: "--host", "'\(name)' is not a host of the inventory")
        }
        guard services.contains(where: { facts.hosts(of: $0).contains { $0.name == host.name } }) else {
            throw ChpkiError.input(.bundleNoServiceOnHost, file: inventory.path, field: "--host", "\(host.name) runs none of \(services.map(\.name).joined(separator: ", "))")
        }
        return host
    }
}
