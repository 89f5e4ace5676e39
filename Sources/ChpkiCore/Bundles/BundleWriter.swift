import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes host trees under an output directory: each tree is built beside its old one and swapped in
/// with renames, so a reader sees the old tree or the new one, never a mix, and nothing stale stays.
public enum BundleWriter {
    /// Locks `output` for one bundle run (a second run waits), then removes staging trees that killed
    /// runs left behind (`.HOST.new-*`, `.HOST.old-*`: they may hold private keys).
    public static func lockOutput(_ output: String, waiting: () -> Void) throws -> DirectoryLock {
        let lock: DirectoryLock
        do { lock = try DirectoryLock(directory: output, waiting: waiting) } catch let failure as POSIXFailure {
            throw ChpkiError.input(file: output, field: "--out", failure.message)
        }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        where entry.hasPrefix(".") && (entry.contains(".new-") || entry.contains(".old-") || entry.contains(".tmp-")) {
            try? FileManager.default.removeItem(atPath: Path.join(output, entry))
        }
        return lock
    }

    public static func write(_ bundle: HostBundle, to output: String, tar: Bool, now: Date) throws -> (tree: String, archive: String?) {
        let target = Path.join(output, bundle.host)
        let staging = Path.join(output, ".\(bundle.host).new-\(UUID().uuidString.prefix(8))")
        do {
            try makeDirectory(staging, mode: 0o755)
            for file in bundle.files {
                let path = Path.join(staging, file.path)
                try makeParents(of: path, root: staging)
                // A fresh staging tree: plain writes (created 0600 under chpki's umask, then chmod);
                // the swap below is what makes the tree appear at once.
                guard FileManager.default.createFile(atPath: path, contents: file.contents), chmod(path, mode_t(file.mode)) == 0 else {
                    throw POSIXFailure.last("cannot write \(path)")
                }
            }
            for directory in Set(bundle.files.flatMap { BundleLayout.privateDirectories(containing: $0.path).map(\.path) }) {
                let mode = BundleLayout.ownedDirectories.first { $0.path == directory }?.mode ?? 0o755
                chmod(Path.join(staging, directory), mode_t(mode))
            }
            try AtomicFile.write(try bundle.manifestJSON(), to: Path.join(staging, HostBundle.manifestName), mode: 0o644)
            try swap(staging, into: target)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            throw error
        }
        guard tar else { return (target, nil) }
        let archive = Path.join(output, "\(bundle.host).tar.gz")
        // The archive holds private keys: readable by its owner only.
        try AtomicFile.write(try Gzip.compress(try Tar.archive(bundle.tarEntries(now: now))), to: archive, mode: 0o600)
        return (target, archive)
    }

    /// Removes host trees (and archives) a previous run wrote for hosts no longer in the set.
    public static func removeStale(in output: String, keeping hosts: Set<String>) throws -> [String] {
        var removed: [String] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? [] where !hosts.contains(entry) {
            let manifest = Path.join(output, entry, HostBundle.manifestName)
            guard let data = FileManager.default.contents(atPath: manifest),
                  let parsed = try? JSONDecoder().decode(HostBundle.Manifest.self, from: data), parsed.generator == "chpki" else { continue }
            try FileManager.default.removeItem(atPath: Path.join(output, entry))
            try? FileManager.default.removeItem(atPath: Path.join(output, "\(entry).tar.gz"))
            removed.append(entry)
        }
        return removed
    }

    static func swap(_ staging: String, into target: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ChpkiError.input(file: target, field: "--out", "exists and is not a directory") }
            let old = Path.join(Path.parent(of: target), ".\(Path.name(of: target)).old-\(UUID().uuidString.prefix(8))")
            guard rename(target, old) == 0 else { throw POSIXFailure.last("cannot move \(target) aside") }
            guard rename(staging, target) == 0 else {
                rename(old, target)
                throw POSIXFailure.last("cannot move the new tree to \(target)")
            }
            try? FileManager.default.removeItem(atPath: old)
        } else {
            guard rename(staging, target) == 0 else { throw POSIXFailure.last("cannot move the new tree to \(target)") }
        }
        AtomicFile.syncDirectory(Path.parent(of: target))
    }

    static func makeDirectory(_ path: String, mode: mode_t) throws {
        guard mkdir(path, mode) == 0 || errno == EEXIST else { throw POSIXFailure.last("cannot create \(path)") }
        chmod(path, mode)
    }

    static func makeParents(of path: String, root: String) throws {
        var missing: [String] = []
        var directory = Path.parent(of: path)
        while directory != root && !FileManager.default.fileExists(atPath: directory) {
            missing.append(directory)
            directory = Path.parent(of: directory)
        }
        for directory in missing.reversed() { try makeDirectory(directory, mode: 0o755) }
    }
}
