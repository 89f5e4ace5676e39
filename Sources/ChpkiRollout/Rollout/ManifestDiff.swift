import ChpkiBundles
import Foundation

/// What changed on one host between the manifest it last installed and its new one: each file or
/// directory added, changed (sha256, mode, owner or group) or removed, the files to delete on the
/// host (an untar never deletes, and a stale key must not stay behind), and the services to reload,
/// trust anchors first, then in the order of their first changed path. A service with no file left
/// in the new manifest has left the host: it is named, never reloaded (that would start it
/// without its certificates).
public struct ManifestDiff: Sendable, Equatable {
    public enum Change: String, Codable, Sendable { case added, changed, removed }

    public struct Entry: Codable, Sendable, Equatable {
        public var kind: String  // "file" or "directory"
        public var path: String
        public var change: Change
        public var service: String
        /// The file's role in the new manifest (in the record for a removed file); nil for a
        /// directory, and for a file only a format-2 record knew.
        public var role: FileRole?
    }

    public struct Service: Codable, Sendable, Equatable {
        public var name: String
        /// Its changed paths, e.g. "etc/etcd/pki/server.pem (changed)".
        public var why: [String]
        /// False: the service left the host (its files are deleted, it is not reloaded).
        public var remains: Bool
    }

    /// True when the new manifest equals the record: nothing to copy or reload.
    public let same: Bool
    public let entries: [Entry]
    /// Absolute paths on the host of the files the new manifest no longer has.
    public let remove: [String]
    public let services: [Service]

    /// `recorded` nil: never installed from here (or `--force`), so everything is added.
    public init(recorded: BundleManifest?, new: BundleManifest) {
        same = recorded == new
        guard !same else {
            entries = []; remove = []; services = []
            return
        }
        struct Key: Hashable, Comparable {
            var path: String, kind: String
            static func < (a: Key, b: Key) -> Bool { (a.path, a.kind) < (b.path, b.kind) }
        }
        struct Facts: Equatable { var sha256: String?, mode: String, owner: String, group: String, service: String, role: FileRole? }
        func table(_ manifest: BundleManifest?) -> [Key: Facts] {
            guard let manifest else { return [:] }
            var out: [Key: Facts] = [:]
            for d in manifest.directories { out[Key(path: d.path, kind: "directory")] = Facts(sha256: nil, mode: d.mode, owner: d.owner, group: d.group, service: d.service, role: nil) }
            for f in manifest.files { out[Key(path: f.path, kind: "file")] = Facts(sha256: f.sha256, mode: f.mode, owner: f.owner, group: f.group, service: f.service, role: f.role) }
            return out
        }
        let old = table(recorded), fresh = table(new)
        var entries: [Entry] = []
        for key in Set(old.keys).union(fresh.keys).sorted() {
            let change: Change
            switch (old[key], fresh[key]) {
            case (nil, _?): change = .added
            case (_?, nil): change = .removed
            case let (a?, b?):
                guard (a.sha256, a.mode, a.owner, a.group) != (b.sha256, b.mode, b.owner, b.group) else { continue }
                change = .changed
            case (nil, nil): continue
            }
            let facts = (fresh[key] ?? old[key])!
            entries.append(Entry(kind: key.kind, path: key.path, change: change, service: facts.service, role: facts.role))
        }
        self.entries = entries
        remove = entries.filter { $0.change == .removed && $0.kind == "file" }.map { "/" + $0.path }
        let remaining = Set(fresh.values.map(\.service))
        var order: [String] = [], why: [String: [String]] = [:]
        for entry in entries {
            if why[entry.service] == nil {
                if entry.service == BundleManifest.trustService { order.insert(entry.service, at: 0) } else { order.append(entry.service) }
            }
            why[entry.service, default: []].append("\(entry.path) (\(entry.change.rawValue))")
        }
        services = order.map { Service(name: $0, why: why[$0] ?? [], remains: remaining.contains($0)) }
    }
}
