import Foundation
import ChpkiBase

/// Makes the files of one install under a `RootedDirectory` take their names as one unit across a
/// crash (SPEC §8). The installer first stages every new file as a temporary beside its target
/// (`RootedDirectory.stage`, fsync'd, directories fsync'd); then `commit` writes this journal —
/// the list of renames — and its `renameat` into place is the commit point; then each old file is
/// kept under its backup name (a hard link) and each temporary renamed over its target; then the
/// journal is removed.
///
/// `recover`, which every install runs first (under the root's lock), finishes a journal it finds
/// (roll forward: a temporary still there is renamed, one already gone was renamed) and removes the
/// temporaries of an install killed before its commit: so after a SIGKILL anywhere the next install
/// starts from all-old or all-new, with no temporary file holding a secret and no stray backup.
///
/// The journal lives in a directory the install has checked (root's, not writable by group or
/// others), so only root can have written it; it is still read with a size limit and every entry
/// must name a path of the layout's table, a temporary name `stage` makes and a backup name beside
/// it, or the install is refused.
public struct InstallJournal {
    public struct Entry: Codable, Sendable, Equatable {
        /// Relative to the root: one of `targets`.
        public var path: String
        /// The staged file, in the same directory.
        public var temporary: String
        /// The name the old file is kept under (same directory), for a replaced file.
        public var backup: String?

        public init(path: String, temporary: String, backup: String?) {
            self.path = path
            self.temporary = temporary
            self.backup = backup
        }
    }

    struct Document: Codable {
        var format: String
        var entries: [Entry]
    }

    public static let name = ".chpki-install-journal"
    static let format = "chpki-install-journal-1"
    static let sizeLimit = 64 << 10

    let root: RootedDirectory
    /// Where the journal lives, relative to the root ("." for the root itself).
    let directory: String
    /// Every path an install may write (the layout's table): the only names a journal may hold,
    /// and the names whose leftover temporaries `recover` removes.
    let targets: [String]

    public init(root: RootedDirectory, directory: String, targets: [String]) {
        self.root = root
        self.directory = directory
        self.targets = targets
    }

    var path: String { directory == "." ? Self.name : directory + "/" + Self.name }

    /// The first of `base`, `base-2`, `base-3`, ... that is free beside `relative` (names only):
    /// a backup never collides with an older one, whatever the clock says.
    public static func freeName(_ base: String, beside relative: String, in root: RootedDirectory) throws -> String {
        var candidate = base
        var number = 1
        while try root.entry(RootedDirectory.sibling(of: relative, named: candidate)) != .missing {
            number += 1
            candidate = "\(base)-\(number)"
        }
        return candidate
    }

    /// Writes the journal of `entries` (the commit point), then carries it out and removes it. A
    /// failure after the commit leaves the journal for the next install to finish, and says so.
    public func commit(_ entries: [Entry]) throws {
        let data = try JSONEncoder().encode(Document(format: Self.format, entries: entries))
        try root.writeFile(path, data: data, mode: 0o600, owner: nil, group: nil)
        do {
            try finish(entries)
        } catch {
            throw POSIXFailure(message: "\(error); the install is committed (\(root.fullPath(path))): install the bundle again to finish it",
                               code: (error as? POSIXFailure)?.code ?? EIO)
        }
    }

    /// Finishes an interrupted install and removes leftover temporaries; returns one note per thing
    /// it did (nothing when there was nothing to do: then it makes no change at all).
    public func recover() throws -> [String] {
        var notes: [String] = []
        switch try root.entry(path) {
        case .missing:
            break
        case .regular:
            let entries = try read()
            try finish(entries)
            notes.append("finished an interrupted install (\(entries.count) file\(entries.count == 1 ? "" : "s"), journal \(root.fullPath(path)))")
        case .directory, .special:
            throw RootedDirectory.Refusal(path: root.fullPath(path), reason: "exists and is not a journal chpki wrote; move it away first")
        }
        // Every name an install creates: the table's files, the journal, each directory on the way.
        var created = targets + [path]
        for target in targets {
            var directory = Path.parent(of: target)
            while directory != "." {
                if !created.contains(directory) { created.append(directory) }
                directory = Path.parent(of: directory)
            }
        }
        var removed = 0
        let byDirectory = Dictionary(grouping: created, by: { Path.parent(of: $0) })
        for (directory, paths) in byDirectory.sorted(by: { $0.key < $1.key }) {
            let names = paths.map { Path.name(of: $0) }
            let leftovers = try root.names(in: directory).filter { name in
                names.contains { RootedDirectory.isTemporary(name, for: $0) }
            }
            for leftover in leftovers.sorted() {
                let relative = RootedDirectory.sibling(of: paths[0], named: leftover)
                // A directory `makeDirectory` did not get to rename is still empty.
                let isDirectory = if case .directory = try root.entry(relative) { true } else { false }
                try root.remove(relative, directory: isDirectory)
            }
            if !leftovers.isEmpty { try root.syncDirectory(directory) }
            removed += leftovers.count
        }
        if removed > 0 {
            notes.append("removed \(removed) temporary file\(removed == 1 ? "" : "s") an interrupted install left")
        }
        return notes
    }

    /// What `recover` would finish, said by a dry run (which writes nothing).
    public func pending() throws -> [String] {
        guard try root.entry(path) != .missing else { return [] }
        return ["an interrupted install is journaled at \(root.fullPath(path)); the install finishes it first (this dry run plans against the files as they are)"]
    }

    /// The journal's entries, each checked against `targets` and the naming rules.
    private func read() throws -> [Entry] {
        let shown = root.fullPath(path)
        let refuse = { (why: String) in
            RootedDirectory.Refusal(path: shown, reason: "not a journal this chpki wrote (\(why)); refusing to finish it: look at it, remove it, then install again")
        }
        let data = try root.read(path, limit: Self.sizeLimit)
        guard let document = try? JSONDecoder().decode(Document.self, from: data) else { throw refuse("not its JSON") }
        guard document.format == Self.format else { throw refuse("format is not \(Self.format)") }
        for entry in document.entries {
            guard targets.contains(entry.path) else { throw refuse("names a file outside the bundle's table") }
            let name = Path.name(of: entry.path)
            guard RootedDirectory.isTemporary(entry.temporary, for: name) else { throw refuse("a temporary name chpki does not make") }
            if let backup = entry.backup {
                guard backup.hasPrefix(name + ".chpki-backup-"), !backup.contains("/"), !backup.contains("\0") else {
                    throw refuse("a backup name chpki does not make")
                }
            }
        }
        return document.entries
    }

    /// Roll forward: for each entry whose temporary is still there, keep the old file (unless that
    /// link was made before the kill), rename; then fsync each directory and remove the journal.
    /// Running it again after a kill anywhere inside it does the rest and nothing twice.
    private func finish(_ entries: [Entry]) throws {
        var directories: [String] = []
        for entry in entries {
            let staged = RootedDirectory.sibling(of: entry.path, named: entry.temporary)
            switch try root.entry(staged) {
            case .missing:
                continue  // renamed before the kill
            case .regular:
                var backup: String?
                if let wanted = entry.backup, case .regular = try root.entry(entry.path),
                   try !root.sameFile(entry.path, RootedDirectory.sibling(of: entry.path, named: wanted)) {
                    backup = try Self.freeName(wanted, beside: entry.path, in: root)
                }
                try root.commit(entry.path, temporary: entry.temporary, backupName: backup)
            case .directory, .special:
                throw RootedDirectory.Refusal(path: root.fullPath(staged), reason: "is not the file chpki staged; move it away, then install again")
            }
            let directory = Path.parent(of: entry.path)
            if !directories.contains(directory) { directories.append(directory) }
        }
        for directory in directories { try root.syncDirectory(directory) }
        try root.remove(path)
        try root.syncDirectory(directory)
    }
}
