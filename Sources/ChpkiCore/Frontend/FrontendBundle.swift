import Foundation

/// `MANIFEST.json`, the first member of a frontend bundle: every file with its SHA-256, size,
/// owner, group and mode, and the directories to create on the new frontend.
public struct FrontendManifest: Codable, Sendable, Equatable {
    public static let format = "chpki-frontend-bundle"
    public static let currentVersion = 1
    public static let memberName = "MANIFEST.json"

    public struct File: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var size: Int
        public var owner: String
        public var group: String
        public var mode: String
    }

    public struct Directory: Codable, Sendable, Equatable {
        public var path: String
        public var owner: String
        public var group: String
        public var mode: String
    }

    public var format: String
    public var version: Int
    public var flavor: FrontendFlavor
    public var migrationLevel: String?
    public var files: [File]
    public var directories: [Directory]

    enum CodingKeys: String, CodingKey {
        case format, version, flavor, files, directories
        case migrationLevel = "migration_level"
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self) + Data("\n".utf8)
    }
}

/// The frontend secret bundle in memory: the flavour, the files, the directories to create.
public struct FrontendBundle: Sendable {
    public var flavor: FrontendFlavor
    /// In the flavour's install order.
    public var files: [FrontendFileData]
    public var directories: [FrontendDirectory]
    public var validation: FrontendValidation

    public func file(_ role: FrontendFile.Role) -> FrontendFileData? {
        let path = flavor.file(role).path
        return files.first { $0.path == path }
    }

    public var manifest: FrontendManifest {
        get throws {
            FrontendManifest(
                format: FrontendManifest.format, version: FrontendManifest.currentVersion, flavor: flavor,
                migrationLevel: validation.migrationLevel?.description,
                files: try files.map {
                    FrontendManifest.File(path: $0.path, sha256: Hex.lower(try Digest.sha256($0.data)), size: $0.data.count,
                                          owner: $0.owner, group: $0.group, mode: ModeText.format($0.mode))
                },
                directories: directories.map {
                    FrontendManifest.Directory(path: $0.path, owner: $0.owner, group: $0.group, mode: ModeText.format($0.mode))
                })
        }
    }

    /// The tar.gz: `MANIFEST.json`, the directories, then the files, with owners and modes, so
    /// `tar -xzpf` restores them too. The same frontend always gives the same bytes.
    public func archive() throws -> Data {
        let newest = files.map(\.modified).max() ?? Date(timeIntervalSince1970: 0)
        var entries = [TarEntry(path: FrontendManifest.memberName, kind: .file(try manifest.encoded()), mode: 0o600,
                                modified: newest)]
        for directory in directories {
            entries.append(TarEntry(path: directory.path, kind: .directory, mode: directory.mode, owner: directory.owner,
                                    group: directory.group, modified: newest))
        }
        for file in files {
            entries.append(TarEntry(path: file.path, kind: .file(file.data), mode: file.mode, owner: file.owner,
                                    group: file.group, modified: file.modified))
        }
        return try Gzip.compress(try Tar.archive(entries), level: 9)
    }
}

extension Hex {
    static func lower(_ bytes: [UInt8]) -> String { upper(bytes).lowercased() }
}

/// Reads a frontend's files from its filesystem root.
public enum FrontendCollector {
    public struct Collected: Sendable {
        public var files: [FrontendFile.Role: FrontendFileData] = [:]
        public var absent: Set<FrontendFile.Role> = []
        public var directories: [FrontendDirectory] = []
        /// Files that exist but cannot be read, missing directories.
        public var problems: [String] = []
        /// Modes chpki tightened (SPEC §5 modes).
        public var notes: [String] = []
    }

    /// `tighten`: clear the mode bits SPEC §5 forbids (and say so in `notes`), as a bundle carries them.
    public static func collect(root: String, flavor: FrontendFlavor, option: String = "--from", tighten: Bool = true) throws -> Collected {
        guard let rootStatus = try FileStatus.of(root) else {
            throw ChpkiError.input(file: root, field: option, "no such directory")
        }
        guard rootStatus.kind == .directory else { throw ChpkiError.input(file: root, field: option, "not a directory") }
        var collected = Collected()
        // A missing top directory is one line, not one per file in it; a missing config directory
        // beside the other flavour's is the wrong --flavor, and nothing else is said.
        var missingDirectories: [String] = []
        for directory in [flavor.configDirectory, flavor.dataDirectory] {
            let path = Path.join(root, directory)
            guard try FileStatus.of(path)?.kind != .directory else { continue }
            let other = Path.join(root, directory == flavor.configDirectory ? flavor.other.configDirectory : flavor.other.dataDirectory)
            if try FileStatus.of(other)?.kind == .directory {
                collected.problems = ["\(path): no such directory (\(other) exists: use --flavor \(flavor.other.rawValue))"]
                return collected
            }
            collected.problems.append("\(path): no such directory")
            missingDirectories.append(directory + "/")
        }
        for directory in flavor.directories {
            guard let status = try FileStatus.of(Path.join(root, directory)), status.kind == .directory else { continue }
            collected.directories.append(FrontendDirectory(path: directory, mode: status.mode, owner: status.owner, group: status.group))
        }
        for file in flavor.files {
            let path = Path.join(root, file.path)
            switch RegularFile.read(path) {
            case let .success((data, status)):
                var mode = status.mode
                if tighten && mode & file.forbiddenModeBits != 0 {
                    let tightened = mode & ~file.forbiddenModeBits
                    collected.notes.append("\(path) is \(ModeText.format(mode)); the bundle carries it as \(ModeText.format(tightened))")
                    mode = tightened
                }
                collected.files[file.role] = FrontendFileData(path: file.path, data: data, mode: mode, owner: status.owner,
                                                              group: status.group, modified: status.modified)
            case .failure(.missing):
                if missingDirectories.contains(where: { file.path.hasPrefix($0) }) { continue }
                collected.absent.insert(file.role)
            case let .failure(.notRegular(kind)):
                collected.problems.append("\(path): not a regular file (\(kind == .directory ? "a directory" : "a special file"))")
            case let .failure(.unreadable(reason)):
                collected.problems.append("\(path): cannot read: \(reason)")
            }
        }
        return collected
    }

    /// Collects and validates: the bundle, or every problem.
    public static func bundle(root: String, flavor: FrontendFlavor, option: String = "--from") throws -> (FrontendBundle, notes: [String], problems: [String]) {
        let collected = try collect(root: root, flavor: flavor, option: option)
        let validation = FrontendValidation.validate(flavor: flavor, files: collected.files, absent: collected.absent) {
            Path.join(root, $0.path)
        }
        let files = flavor.files.compactMap { collected.files[$0.role] }
        let bundle = FrontendBundle(flavor: flavor, files: files, directories: collected.directories, validation: validation)
        return (bundle, collected.notes, collected.problems + validation.problems)
    }
}

/// Reads a bundle file: decrypts a CMS envelope, unpacks, checks the manifest against every member,
/// and validates the files as `bundle-frontend` did.
public enum FrontendBundleReader {
    public struct Opened: Sendable {
        public var bundle: FrontendBundle
        public var manifest: FrontendManifest
        public var encrypted: Bool
    }

    /// gzip magic: an unencrypted bundle.
    static func isGzip(_ data: Data) -> Bool { data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B }

    public static func open(_ data: Data, file: String, passphrase: () throws -> Passphrase) throws -> Opened {
        var archive = data
        var encrypted = false
        if !isGzip(data) {
            guard PasswordEnvelope.isEnvelope(data) else {
                throw ChpkiError.input(file: file, field: nil, "not a frontend bundle (neither a tar.gz nor a CMS envelope)")
            }
            encrypted = true
            let secret = try passphrase()
            do {
                archive = try PasswordEnvelope.open(data, passphrase: secret)
            } catch let error as OpenSSLError {
                throw ChpkiError.input(file: file, field: nil, "cannot decrypt: wrong passphrase, or the file is damaged (\(error.reasons.last ?? error.operation))")
            }
            guard isGzip(archive) else {
                throw ChpkiError.input(file: file, field: nil, "decrypted, but the content is not a frontend bundle (wrong passphrase?)")
            }
        }
        let entries: [TarEntry]
        do {
            entries = try Tar.read(try Gzip.decompress(archive, limit: 64 << 20))
        } catch let error as ChpkiError {
            throw ChpkiError.input(file: file, field: nil, "not a complete frontend bundle: \(error.message)")
        }
        let manifest = try readManifest(entries, file: file)
        let (bundle, problems) = try check(entries, manifest: manifest, file: file)
        let all = problems + bundle.validation.problems
        guard all.isEmpty else { throw ChpkiError(.refused, all.joined(separator: "\n")) }
        return Opened(bundle: bundle, manifest: manifest, encrypted: encrypted)
    }

    static func readManifest(_ entries: [TarEntry], file: String) throws -> FrontendManifest {
        guard let member = entries.first(where: { $0.path == FrontendManifest.memberName }), let data = member.data else {
            throw ChpkiError.input(file: file, field: FrontendManifest.memberName, "missing: not a chpki frontend bundle")
        }
        let manifest: FrontendManifest
        do {
            manifest = try JSONDecoder().decode(FrontendManifest.self, from: data)
        } catch {
            throw ChpkiError.input(file: file, field: FrontendManifest.memberName, "not a frontend bundle manifest (\(JSONProblem.describe(error)))")
        }
        guard manifest.format == FrontendManifest.format else {
            throw ChpkiError.input(file: file, field: "\(FrontendManifest.memberName) format", "'\(manifest.format)' is not \(FrontendManifest.format)")
        }
        guard manifest.version == FrontendManifest.currentVersion else {
            throw ChpkiError.input(file: file, field: "\(FrontendManifest.memberName) version", "\(manifest.version) is not supported (this chpki reads version \(FrontendManifest.currentVersion))")
        }
        return manifest
    }

    /// Every manifest entry against its member: one problem line per mismatch.
    static func check(_ entries: [TarEntry], manifest: FrontendManifest, file: String) throws -> (FrontendBundle, [String]) {
        let flavor = manifest.flavor
        var problems: [String] = []
        func problem(_ path: String, _ text: String) { problems.append("\(file): \(path): \(text)") }
        var members: [String: TarEntry] = [:]
        for entry in entries where entry.path != FrontendManifest.memberName {
            if members[entry.path] != nil { problem(entry.path, "appears twice in the archive") }
            members[entry.path] = entry
        }
        let known = Dictionary(uniqueKeysWithValues: flavor.files.map { ($0.path, $0) })
        var listed: Set<String> = []
        var files: [FrontendFile.Role: FrontendFileData] = [:]
        for entry in manifest.files {
            guard let spec = known[entry.path] else {
                problem(entry.path, "not a file of a \(flavor.rawValue) frontend bundle; refusing to install it")
                continue
            }
            guard listed.insert(entry.path).inserted else {
                problem(entry.path, "listed twice in \(FrontendManifest.memberName)")
                continue
            }
            guard let member = members[entry.path], let data = member.data else {
                problem(entry.path, "listed in \(FrontendManifest.memberName) but missing from the archive")
                continue
            }
            let digest = Hex.lower(try Digest.sha256(data))
            guard digest == entry.sha256.lowercased(), data.count == entry.size else {
                problem(entry.path, "SHA-256 does not match \(FrontendManifest.memberName): the bundle was altered or damaged")
                continue
            }
            guard let mode = ModeText.parse(entry.mode), mode == member.mode else {
                problem(entry.path, "mode \(entry.mode) in \(FrontendManifest.memberName) does not match the archive's \(ModeText.format(member.mode))")
                continue
            }
            guard entry.owner == member.owner, entry.group == member.group, !entry.owner.isEmpty, !entry.group.isEmpty else {
                problem(entry.path, "owner \(entry.owner):\(entry.group) in \(FrontendManifest.memberName) does not match the archive's \(member.owner):\(member.group)")
                continue
            }
            // A hand-made bundle cannot loosen what SPEC §5 keeps private.
            files[spec.role] = FrontendFileData(path: entry.path, data: data, mode: mode & ~spec.forbiddenModeBits,
                                                owner: entry.owner, group: entry.group, modified: member.modified)
        }
        var directories: [FrontendDirectory] = []
        for directory in manifest.directories {
            guard flavor.directories.contains(directory.path) else {
                problem(directory.path, "not a directory of a \(flavor.rawValue) frontend; refusing to create it")
                continue
            }
            guard let mode = ModeText.parse(directory.mode) else {
                problem(directory.path, "mode '\(directory.mode)' is not octal")
                continue
            }
            directories.append(FrontendDirectory(path: directory.path, mode: mode, owner: directory.owner, group: directory.group))
        }
        let directoryPaths = Set(manifest.directories.map(\.path))
        for path in members.keys.sorted() where !listed.contains(path) && !directoryPaths.contains(path) {
            problem(path, "in the archive but not in \(FrontendManifest.memberName)")
        }
        // A member left out of the manifest is already reported; do not call it missing too.
        let absent = Set(flavor.files.filter { !listed.contains($0.path) && members[$0.path] == nil }.map(\.role))
        let validation = FrontendValidation.validate(flavor: flavor, files: files, absent: absent) { "\(file): \($0.path)" }
        let ordered = flavor.files.compactMap { files[$0.role] }
        return (FrontendBundle(flavor: flavor, files: ordered, directories: directories, validation: validation), problems)
    }
}
