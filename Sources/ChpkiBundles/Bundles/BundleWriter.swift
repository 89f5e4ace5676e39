import ChpkiBase
import ChpkiPlatform
import Foundation

/// Writes host trees (and archives) under an output directory. Each tree is written once, into a
/// staging directory beside its old one; after one `syncfs` for the whole run, each is swapped in
/// atomically, so a reader sees a host's old tree or its new one, never a mix, and nothing stale
/// stays. Hosts are laid out in parallel, one at a time per core: memory stays flat.
public enum BundleWriter {
    /// Locks `output` for one bundle run (a second run waits), then removes staging trees that killed
    /// runs left behind (`.HOST.new-*`, `.HOST.old-*`: they may hold private keys).
    public static func lockOutput(_ output: String, waiting: () -> Void) throws -> DirectoryLock {
        let lock: DirectoryLock
        do { lock = try DirectoryLock(directory: output, waiting: waiting) } catch let failure as POSIXFailure {
            throw ChpkiError.input(.outputUnusable, file: output, field: "--out", failure.message)
        }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        where entry.hasPrefix(".") && (entry.contains(".new-") || entry.contains(".old-") || entry.contains(".tmp-")) {
            try? FileManager.default.removeItem(atPath: Path.join(output, entry))
        }
        return lock
    }

    public struct Written: Sendable {
        public var host: String
        public var services: [String]
        public var files: Int
        public var tree: String
        public var archive: String?
        /// False when the host's tree (and archive) already held exactly these bytes and were kept.
        public var changed: Bool
    }

    private struct Staged: Sendable {
        var written: Written
        /// The new tree, or nil when the one in place is identical.
        var tree: String?
        var archive: String?
    }

    /// Lays out every host of `plan` under `output`. `progress(done, total)` is called as hosts finish.
    public static func write(_ plan: BundlePlan, to output: String, tar: Bool,
                             progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) throws -> [Written] {
        let hosts = plan.hosts
        let slots = ParallelResults<Staged>(count: hosts.count)
        slots.run(workers: ProcessInfo.processInfo.activeProcessorCount, makeContext: {}, filled: { progress($0, hosts.count) }) { _, index in
            try stage(plan.bundle(for: hosts[index]), in: output, tar: tar)
        }
        let staged: [Staged]
        do { staged = try slots.values() } catch {
            for item in slots.succeeded { discard(item) }
            throw error
        }
        var replaced: [String] = []
        do {
            if staged.contains(where: { $0.tree != nil || $0.archive != nil }) { try FreshTree.syncFileSystem(containing: output) }
            for item in staged {
                if let tree = item.tree, let old = try FreshTree.replace(item.written.tree, with: tree) { replaced.append(old) }
                if let archive = item.archive, let target = item.written.archive { try FreshTree.rename(archive, to: target) }
            }
            if !replaced.isEmpty || staged.contains(where: { $0.archive != nil }) { try FreshTree.syncFileSystem(containing: output) }
        } catch {
            for item in staged { discard(item) }
            throw error
        }
        // Removing old trees is the slow part on a file system mounted with `discard` (each unlink
        // of a synced file trims its blocks): spread it over the cores.
        let old = replaced
        DispatchQueue.concurrentPerform(iterations: old.count) { index in try? FileManager.default.removeItem(atPath: old[index]) }
        return staged.map(\.written)
    }

    /// One host's tree in a staging directory (and its archive beside the target), not yet in place;
    /// nothing when the tree (and archive) in place already hold exactly these bytes.
    private static func stage(_ bundle: HostBundle, in output: String, tar: Bool) throws -> Staged {
        let suffix = UUID().uuidString.prefix(8)
        let target = Path.join(output, bundle.host)
        let archiveTarget = Path.join(output, "\(bundle.host).tar.gz")
        let manifestJSON = try bundle.manifest().encoded()
        var staged = Staged(written: Written(host: bundle.host, services: bundle.services, files: bundle.files.count, tree: target,
                                             archive: tar ? archiveTarget : nil, changed: false), tree: nil, archive: nil)
        do {
            if !holds(bundle, manifestJSON: manifestJSON, at: target) {
                let staging = Path.join(output, ".\(bundle.host).new-\(suffix)")
                staged.tree = staging
                try writeTree(bundle, manifestJSON: manifestJSON, at: staging)
            }
            if tar {
                // The tar and its gzip hold private keys: both in wiped buffers, released (and
                // wiped) when this block ends; the archive in place is compared in wiped memory too.
                let archive = try Gzip.compress(try Tar.secretArchive(bundle.tarEntries(manifestJSON: manifestJSON)))
                try archive.withBytes { bytes in
                    if let status = RegularFile.status(archiveTarget, ifHolding: bytes), status.mode == 0o600 {
                        // the same bytes are in place already
                    } else {
                        let staging = Path.join(output, ".\(bundle.host).tar.gz.new-\(suffix)")
                        staged.archive = staging
                        // The archive holds private keys: readable by its owner only.
                        try FreshTree.createFile(staging, bytes: bytes, mode: 0o600, modified: bundle.modified)
                    }
                }
            }
        } catch {
            discard(staged)
            throw error
        }
        staged.written.changed = staged.tree != nil || staged.archive != nil
        return staged
    }

    /// Whether the tree at `root` is exactly what `writeTree` would write: the same manifest, every
    /// file with its bytes and mode, every directory with its mode, and nothing else.
    static func holds(_ bundle: HostBundle, manifestJSON: Data, at root: String) -> Bool {
        let manifest = BundleFile(BundleManifest.path, manifestJSON, mode: 0o644, owner: "root", service: "")
        guard holds(manifest, at: root) else { return false }
        var files: [String: BundleFile] = [BundleManifest.path: manifest]
        for file in bundle.files { files[file.path] = file }
        var directories: [String: UInt16] = [:]
        for path in Array(files.keys) + bundle.directories.map({ $0.path + "/x" }) {
            var directory = Path.parent(of: path)
            while directory != "." && directories[directory] == nil {
                directories[directory] = 0o755
                directory = Path.parent(of: directory)
            }
        }
        for directory in bundle.directories { directories[directory.path] = directory.mode }
        guard let present = FileManager.default.subpaths(atPath: root), Set(present) == Set(files.keys).union(directories.keys) else { return false }
        for (path, mode) in directories {
            guard let status = (try? FileStatus.of(Path.join(root, path), followLinks: false)) ?? nil,
                  status.kind == .directory, status.mode == mode else { return false }
        }
        for (path, expected) in files {
            guard let status = (try? FileStatus.of(Path.join(root, path), followLinks: false)) ?? nil, status.kind == .regular,
                  status.mode == expected.mode, holds(expected, at: root) else { return false }
        }
        return true
    }

    /// Whether the file at `file.path` under `root` holds exactly `file`'s bytes (read into wiped
    /// memory: the old file may hold a key).
    private static func holds(_ file: BundleFile, at root: String) -> Bool {
        file.withContents { bytes in
            bytes.count <= ReadLimits.bundleFile && RegularFile.status(Path.join(root, file.path), ifHolding: bytes) != nil
        }
    }

    /// The tree: parents 0755, the directories chpki owns with their modes, every file, the manifest.
    /// Owners are recorded (manifest, tar headers), not applied: the users rarely exist here.
    static func writeTree(_ bundle: HostBundle, manifestJSON: Data, at root: String) throws {
        try FreshTree.makeDirectory(root, mode: 0o755)
        var made: Set<String> = []
        func parents(of path: String) throws {
            var missing: [String] = []
            var directory = Path.parent(of: path)
            while directory != "." && !made.contains(directory) {
                missing.append(directory)
                directory = Path.parent(of: directory)
            }
            for directory in missing.reversed() {
                try FreshTree.makeDirectory(Path.join(root, directory), mode: 0o755)
                made.insert(directory)
            }
        }
        for file in bundle.files {
            try parents(of: file.path)
            try file.withContents { try FreshTree.createFile(Path.join(root, file.path), bytes: $0, mode: file.mode, modified: bundle.modified) }
        }
        try parents(of: BundleManifest.path)
        try FreshTree.createFile(Path.join(root, BundleManifest.path), manifestJSON, mode: 0o644, modified: bundle.modified)
        for directory in bundle.directories {
            try parents(of: directory.path + "/x")
            try FreshTree.makeDirectory(Path.join(root, directory.path), mode: directory.mode)
        }
        for directory in made.sorted(by: >) { FreshTree.setTime(Path.join(root, directory), bundle.modified) }
        FreshTree.setTime(root, bundle.modified)
    }

    private static func discard(_ item: Staged) {
        if let tree = item.tree { try? FileManager.default.removeItem(atPath: tree) }
        if let archive = item.archive { try? FileManager.default.removeItem(atPath: archive) }
    }

    /// Removes host trees (and archives) a previous run wrote for hosts no longer in the set
    /// (staging leftovers of a killed run are removed by `lockOutput`).
    public static func removeStale(in output: String, keeping hosts: Set<String>) throws -> [String] {
        var removed: [String] = []
        for entry in ((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []).sorted() where !entry.hasPrefix(".") {
            guard !hosts.contains(entry), isChpkiTree(Path.join(output, entry)) else { continue }
            try FileManager.default.removeItem(atPath: Path.join(output, entry))
            try? FileManager.default.removeItem(atPath: Path.join(output, "\(entry).tar.gz"))
            removed.append(entry)
        }
        return removed
    }

    /// A tree chpki wrote: its manifest (or, from chpki before format 2, one at the tree's root) says so.
    static func isChpkiTree(_ tree: String) -> Bool {
        for path in [Path.join(tree, BundleManifest.path), Path.join(tree, "MANIFEST.json")] {
            if let data = RegularFile.contents(path, limit: ReadLimits.bundleFile),
               let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], object["generator"] as? String == "chpki" {
                return true
            }
        }
        return false
    }
}
