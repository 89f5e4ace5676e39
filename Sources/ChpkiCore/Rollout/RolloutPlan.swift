import Foundation

/// `chpki rollout-plan`: every host tree of a bundle directory against the manifest that host
/// last installed (the state directory of chpki-rotate), as one plan: per host, unchanged or
/// install, the files to delete and the services to reload; and the hosts that have a record but
/// no bundle any more. The plan is computed entirely before anything runs: one refused record
/// refuses the whole plan (exit 2), so nothing runs on any host.
public struct RolloutPlan: Encodable, Sendable {
    public struct Host: Encodable, Sendable {
        public var host: String
        /// The new manifest in the tree, and the record it is compared with.
        public var manifest: String
        public var record: String
        public var install: Bool
        public var changes: [ManifestDiff.Entry]
        public var remove: [String]
        public var services: [ManifestDiff.Service]

        init(_ host: String, manifest: String, record: String, _ diff: ManifestDiff) {
            self.host = host
            self.manifest = manifest
            self.record = record
            install = !diff.same
            changes = diff.entries
            remove = diff.remove
            services = diff.services
        }
    }

    public struct Orphan: Encodable, Sendable {
        public var host: String
        public var record: String
    }

    public var hosts: [Host]
    /// Installed before, no bundle now: nothing runs there (the host may be gone).
    public var orphans: [Orphan]

    /// `bundles`: the trees `chpki bundle --out` laid out; `state`: one `<fqdn>.json` per host
    /// (absent: nothing installed yet); `only`: FQDNs or short names (empty: every host);
    /// `force`: the records are not read, every selected host is installed in full.
    public static func make(bundles: String, state: String, only: [String], force: Bool) throws -> RolloutPlan {
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
        var hosts: [Host] = []
        for name in selected {
            let manifestPath = "\(bundles)/\(name)/\(BundleManifest.path)"
            let recordPath = "\(state)/\(name).json"
            guard let new = try InstallRecord.read(manifestPath, host: name) else {
                throw ChpkiError.input(.fileMissing, file: manifestPath, field: nil, "missing")
            }
            let recorded = force ? nil : try InstallRecord.read(recordPath, host: name)
            hosts.append(Host(name, manifest: manifestPath, record: recordPath, ManifestDiff(recorded: recorded, new: new)))
        }
        let orphans = recordedHosts(state).filter { !trees.contains($0) }.map { Orphan(host: $0, record: "\(state)/\($0).json") }
        return RolloutPlan(hosts: hosts, orphans: orphans)
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

    /// One record per line, tab-separated, for a shell script without a JSON parser (chpki-rotate).
    /// Every field is a checked host name, service name or path (no tab, newline, space or shell
    /// metacharacter) except the last field of `reload`/`left`, the human list of changed paths:
    ///   host HOST same|install     remove HOST /ABS/PATH     reload HOST SERVICE WHY
    ///   left HOST SERVICE WHY      orphan HOST
    public var lines: String {
        var out = ""
        for host in hosts {
            out += "host\t\(host.host)\t\(host.install ? "install" : "same")\n"
            for path in host.remove { out += "remove\t\(host.host)\t\(path)\n" }
            for service in host.services {
                out += "\(service.remains ? "reload" : "left")\t\(host.host)\t\(service.name)\t\(service.why.joined(separator: ", "))\n"
            }
        }
        for orphan in orphans { out += "orphan\t\(orphan.host)\n" }
        return out
    }

    /// For people: what each host would get.
    public var summary: [String] {
        var out: [String] = []
        for host in hosts {
            guard host.install else { out.append("\(host.host): unchanged since its last install"); continue }
            out.append("\(host.host): install (\(host.changes.count) change(s))")
            for path in host.remove { out.append("  remove \(path)") }
            for service in host.services {
                out.append("  \(service.remains ? "reload" : "left the host, not reloaded:") \(service.name): \(service.why.joined(separator: ", "))")
            }
        }
        for orphan in orphans { out.append("\(orphan.host): installed before, no bundle now (\(orphan.record))") }
        return out
    }
}

extension RolloutPlan {
    /// One host: the manifest at `new` against the record at `recorded` (missing: never installed).
    public static func pair(recorded: String, new: String) throws -> RolloutPlan {
        guard let fresh = try InstallRecord.read(new, host: nil) else { throw ChpkiError.input(.fileMissing, file: new, field: nil, "missing") }
        let diff = ManifestDiff(recorded: try InstallRecord.read(recorded, host: fresh.host), new: fresh)
        return RolloutPlan(hosts: [Host(fresh.host, manifest: new, record: recorded, diff)], orphans: [])
    }
}
