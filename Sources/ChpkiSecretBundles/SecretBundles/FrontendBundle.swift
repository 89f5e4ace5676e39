import ChpkiBase
import ChpkiPlatform
import Foundation

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

    public var manifest: SecretBundleManifest {
        get throws {
            try SecretBundleArchive.manifest(flavor.layout, files: files.map { ($0.path, $0.data) }, flavor: flavor,
                                             migrationLevel: validation.migrationLevel?.description)
        }
    }

    /// The tar.gz, with the table's modes and owners. The same frontend always gives the same bytes.
    public func archive(source: String) throws -> Data {
        let newest = files.map(\.modified).max() ?? Date(timeIntervalSince1970: 0)
        return try SecretBundleArchive.write(try manifest, files: files.map { ($0.path, $0.data) }, modified: newest, source: source)
    }
}

/// Reads a frontend's files from its filesystem root.
public enum FrontendCollector {
    public struct Collected: Sendable {
        public var files: [FrontendFile.Role: FrontendFileData] = [:]
        public var absent: Set<FrontendFile.Role> = []
        public var directories: [FrontendDirectory] = []
        /// Files that exist but cannot be read, missing directories.
        public var problems: [String] = []
        /// Modes and owners chpki set to SPEC §5's table.
        public var notes: [String] = []
    }

    /// `normalize`: give each file the mode and owner of the flavour's table (and say in `notes`
    /// where the frontend differs), as the bundle carries them; false keeps what is on disk.
    public static func collect(root: String, flavor: FrontendFlavor, option: String = "--from", normalize: Bool = true) throws -> Collected {
        guard let rootStatus = try FileStatus.of(root) else {
            throw ChpkiError.input(.fileMissing, file: root, field: option, "no such directory")
        }
        guard rootStatus.kind == .directory else { throw ChpkiError.input(.fileNotDirectory, file: root, field: option, "not a directory") }
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
            switch RegularFile.read(path, limit: SecretBundleLimits.tar.memberSize) {
            case let .success((data, status)):
                var (mode, owner, group) = (status.mode, status.owner, status.group)
                if normalize {
                    if mode != file.mode {
                        collected.notes.append("\(path) is \(ModeText.format(mode)); the bundle carries it as \(ModeText.format(file.mode)) (SPEC §5)")
                    }
                    let layout = flavor.layout
                    if !layout.accepts(owner) || !layout.accepts(group) {
                        collected.notes.append("\(path) is owned by \(owner):\(group); the bundle carries it as root:root (SPEC §5)")
                    }
                    (mode, owner, group) = (file.mode, SecretBundleLayout.owner, SecretBundleLayout.group)
                }
                collected.files[file.role] = FrontendFileData(path: file.path, data: data, mode: mode, owner: owner,
                                                              group: group, modified: status.modified)
            case .failure(.missing):
                if missingDirectories.contains(where: { file.path.hasPrefix($0) }) { continue }
                collected.absent.insert(file.role)
            case let .failure(.notRegular(kind)):
                collected.problems.append("\(path): not a regular file (\(kind == .directory ? "a directory" : "a special file"))")
            case let .failure(failure):
                collected.problems.append("\(path): \(failure.reason)")
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

/// Reads a frontend bundle file: decrypts a CMS envelope, unpacks, checks the manifest against
/// every member and against the flavour's table, and validates the files as `bundle-frontend` did.
public enum FrontendBundleReader {
    public struct Opened: Sendable {
        public var bundle: FrontendBundle
        public var manifest: SecretBundleManifest
        public var encrypted: Bool
    }

    public static func open(_ data: Data, file: String, passphrase: () throws -> Passphrase) throws -> Opened {
        let unpacked = try SecretBundleArchive.open(data, file: file, expected: "frontend bundle", passphrase: passphrase)
        let manifest = unpacked.manifest
        guard manifest.format == FrontendManifest.format else {
            let hint = manifest.format == BackendSecretsBundle.format ? " (a Chef Backend secrets bundle: use install-backend)" : ""
            throw ChpkiError.input(.secretsWrongKind, file: file, field: "\(SecretBundleManifest.memberName) format", "'\(manifest.format)' is not \(FrontendManifest.format)\(hint)")
        }
        guard let flavor = manifest.flavor else {
            throw ChpkiError.input(.secretsWrongKind, file: file, field: "\(SecretBundleManifest.memberName) flavor", "missing")
        }
        let (verified, problems) = try SecretBundleArchive.check(unpacked, layout: flavor.layout, file: file)
        guard problems.isEmpty else { throw ChpkiError(.secretsInvalid, problems: problems) }
        var files: [FrontendFile.Role: FrontendFileData] = [:]
        for spec in flavor.files {
            guard let data = verified[spec.path] else { continue }
            files[spec.role] = FrontendFileData(path: spec.path, data: data, mode: spec.mode, owner: SecretBundleLayout.owner,
                                                group: SecretBundleLayout.group,
                                                modified: unpacked.members[spec.path]?.modified ?? Date(timeIntervalSince1970: 0))
        }
        let listed = Set(manifest.files.map(\.path))
        let absent = Set(flavor.files.filter { !listed.contains($0.path) }.map(\.role))
        let validation = FrontendValidation.validate(flavor: flavor, files: files, absent: absent) { "\(file): \($0.path)" }
        guard validation.problems.isEmpty else { throw ChpkiError(.secretsInvalid, problems: validation.problems) }
        let ordered = flavor.files.compactMap { files[$0.role] }
        let directories = flavor.directories.map {
            FrontendDirectory(path: $0, mode: 0o755, owner: SecretBundleLayout.owner, group: SecretBundleLayout.group)
        }
        return Opened(bundle: FrontendBundle(flavor: flavor, files: ordered, directories: directories, validation: validation),
                      manifest: manifest, encrypted: unpacked.encrypted)
    }
}
