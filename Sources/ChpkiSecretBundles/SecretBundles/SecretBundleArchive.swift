import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import Foundation

/// `MANIFEST.json`, the first member of a secret bundle: every file with its SHA-256, size, owner,
/// group and mode, and the directories to create. Frontend bundles also name their flavour and
/// migration level.
public struct SecretBundleManifest: Codable, Sendable, Equatable {
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
    public var flavor: FrontendFlavor?
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

/// The frontend bundle's manifest names (kept for readers of the format).
public enum FrontendManifest {
    public static let format = "chpki-frontend-bundle"
    public static let memberName = SecretBundleManifest.memberName
}

/// A secret bundle on the wire: a tar.gz of `MANIFEST.json`, the directories and the files, with
/// the table's modes and owners (so `tar -xzpf` restores them too), optionally inside a CMS
/// password envelope. One mechanism for the frontend bundle and the Chef Backend secrets.
public enum SecretBundleArchive {
    /// The manifest of `files` (path -> bytes) laid out by `layout`.
    public static func manifest(_ layout: SecretBundleLayout, files: [(path: String, data: Data)], flavor: FrontendFlavor? = nil,
                                migrationLevel: String? = nil) throws -> SecretBundleManifest {
        let paths = Set(files.map(\.path))
        return SecretBundleManifest(
            format: layout.format, version: SecretBundleManifest.currentVersion, flavor: flavor, migrationLevel: migrationLevel,
            files: try layout.files.compactMap { spec in
                guard let file = files.first(where: { $0.path == spec.path }) else { return nil }
                return SecretBundleManifest.File(path: spec.path, sha256: Hex.lower(try Digest.sha256(file.data)), size: file.data.count,
                                                 owner: SecretBundleLayout.owner, group: SecretBundleLayout.group,
                                                 mode: ModeText.format(spec.mode))
            },
            directories: layout.directories.filter { directory in paths.contains { $0.hasPrefix(directory.path + "/") } }.map {
                SecretBundleManifest.Directory(path: $0.path, owner: SecretBundleLayout.owner, group: SecretBundleLayout.group,
                                               mode: ModeText.format($0.mode))
            })
    }

    /// The tar.gz. Refuses (exit 2) a file or a bundle larger than `SecretBundleLimits`, which the
    /// reader would refuse too.
    public static func write(_ manifest: SecretBundleManifest, files: [(path: String, data: Data)], modified: Date,
                             source: String) throws -> Data {
        let limits = SecretBundleLimits.tar
        for file in files where file.data.count > limits.memberSize {
            throw ChpkiError.input(.secretsTooLarge, file: Path.join(source, file.path), field: nil,
                                   "\(file.data.count) bytes, more than the \(limits.memberSize) a secret bundle may hold per file")
        }
        var entries = [TarEntry(path: SecretBundleManifest.memberName, kind: .file(try manifest.encoded()), mode: 0o600, modified: modified)]
        for directory in manifest.directories {
            entries.append(TarEntry(path: directory.path, kind: .directory, mode: ModeText.parse(directory.mode) ?? 0o755,
                                    owner: directory.owner, group: directory.group, modified: modified))
        }
        for entry in manifest.files {
            guard let file = files.first(where: { $0.path == entry.path }) else { continue }
            entries.append(TarEntry(path: entry.path, kind: .file(file.data), mode: ModeText.parse(entry.mode) ?? 0o600,
                                    owner: entry.owner, group: entry.group, modified: modified))
        }
        // The tar and the gzip are built in wiped buffers (they hold the secrets in clear); only
        // the compressed bytes leave as Data, which the callers write or seal.
        let tar = try Tar.secretArchive(entries)
        guard tar.count <= limits.archiveSize else {
            throw ChpkiError.input(.secretsTooLarge, file: source, field: nil, "the bundle would be \(tar.count) bytes, more than the \(limits.archiveSize) a secret bundle may be")
        }
        return try Gzip.compress(tar, level: 9).data
    }

    /// What `open` found: the manifest and every member by path.
    public struct Unpacked: Sendable {
        public var manifest: SecretBundleManifest
        public var members: [String: TarEntry]
        public var encrypted: Bool
    }

    /// gzip magic: an unencrypted bundle.
    static func isGzip(_ data: Data) -> Bool { data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B }

    /// Reads `path` (a regular file, at most `SecretBundleLimits.fileSize`).
    public static func readFile(_ path: String) throws -> Data {
        if let status = try FileStatus.of(path), status.kind == .regular, status.size > SecretBundleLimits.fileSize {
            throw ChpkiError.input(.secretsTooLarge, file: path, field: nil, "\(status.size) bytes, more than the \(SecretBundleLimits.fileSize) a secret bundle may be")
        }
        switch RegularFile.read(path, limit: SecretBundleLimits.fileSize) {
        case let .success((contents, _)):
            guard contents.count <= SecretBundleLimits.fileSize else {
                throw ChpkiError.input(.secretsTooLarge, file: path, field: nil, "more than the \(SecretBundleLimits.fileSize) bytes a secret bundle may be")
            }
            return contents
        case .failure(.missing): throw ChpkiError.input(.fileMissing, file: path, field: nil, "no such file")
        case .failure(.notRegular): throw ChpkiError.input(.fileNotRegular, file: path, field: nil, "not a regular file")
        case let .failure(failure): throw ChpkiError.input(failure.code, file: path, field: nil, failure.reason)
        }
    }

    /// Decrypts (asking for the passphrase only for an envelope), decompresses and unpacks, within
    /// the limits; reads the manifest. `expected` names the kind for the errors.
    public static func open(_ data: Data, file: String, expected: String, passphrase: () throws -> Passphrase) throws -> Unpacked {
        var archive = data
        var encrypted = false
        if !isGzip(data) {
            guard PasswordEnvelope.isEnvelope(data) else {
                throw ChpkiError.input(.secretsNotABundle, file: file, field: nil, "not a \(expected) (neither a tar.gz nor a CMS envelope)")
            }
            encrypted = true
            let secret = try passphrase()
            do {
                archive = try PasswordEnvelope.open(data, passphrase: secret)
            } catch let error as OpenSSLError {
                throw ChpkiError.input(.secretsDecryptFailed, file: file, field: nil, "cannot decrypt: wrong passphrase, or the file is damaged (\(error.reasons.last ?? error.operation))")
            }
            guard isGzip(archive) else {
                archive.wipe()
                throw ChpkiError.input(.secretsNotABundle, file: file, field: nil, "decrypted, but the content is not a \(expected) (wrong passphrase?)")
            }
        }
        defer { if encrypted { archive.wipe() } }
        var entries: [TarEntry]
        do {
            var tar = try Gzip.decompress(archive, limit: SecretBundleLimits.tar.archiveSize)
            defer { tar.wipe() }
            entries = try Tar.read(tar, limits: SecretBundleLimits.tar)
        } catch let error as ChpkiError {
            // Keep the archive's own code (archive.truncated, archive.unsafe-member...): it says more.
            throw ChpkiError.input(error.code, file: file, field: nil, "not a complete \(expected): \(error.message)")
        }
        guard let member = entries.first(where: { $0.path == SecretBundleManifest.memberName }), let manifestData = member.data else {
            throw ChpkiError.input(.secretsNotABundle, file: file, field: SecretBundleManifest.memberName, "missing: not a chpki \(expected)")
        }
        let manifest: SecretBundleManifest
        do {
            manifest = try JSONDecoder().decode(SecretBundleManifest.self, from: manifestData)
        } catch {
            throw ChpkiError.input(.secretsNotABundle, file: file, field: SecretBundleManifest.memberName, "not a secret bundle manifest (\(JSONProblem.describe(error)))")
        }
        guard manifest.version == SecretBundleManifest.currentVersion else {
            throw ChpkiError.input(.secretsUnsupportedVersion, file: file, field: "\(SecretBundleManifest.memberName) version", "\(manifest.version) is not supported (this chpki reads version \(SecretBundleManifest.currentVersion))")
        }
        var members: [String: TarEntry] = [:]
        for entry in entries where entry.path != SecretBundleManifest.memberName { members[entry.path] = entry }
        entries.removeAll()
        return Unpacked(manifest: manifest, members: members, encrypted: encrypted)
    }

    /// Every manifest entry against its member and against `layout`: the files by path (bytes
    /// verified), and one problem line per refusal, each naming the bundle and the path.
    public static func check(_ unpacked: Unpacked, layout: SecretBundleLayout, file: String) throws -> (files: [String: Data], problems: [String]) {
        let manifest = unpacked.manifest
        var problems: [String] = []
        func problem(_ path: String, _ text: String) { problems.append("\(file): \(path): \(text)") }
        /// The entry's mode when it is listed once, has an octal mode and agrees with `layout`;
        /// else nil and its problem line. The same rules for files and directories.
        func admit(_ path: String, mode text: String, owner: String, group: String, isDirectory: Bool,
                   into seen: inout Set<String>) -> UInt16? {
            guard seen.insert(path).inserted else {
                problem(path, "listed twice in \(SecretBundleManifest.memberName)")
                return nil
            }
            guard let mode = ModeText.parse(text) else {
                problem(path, "mode '\(text)' in \(SecretBundleManifest.memberName) is not an octal mode")
                return nil
            }
            if let refusal = layout.disagreement(path: path, mode: mode, owner: owner, group: group, isDirectory: isDirectory) {
                problem(path, refusal)
                return nil
            }
            return mode
        }
        var listed: Set<String> = []
        var files: [String: Data] = [:]
        for entry in manifest.files {
            guard let mode = admit(entry.path, mode: entry.mode, owner: entry.owner, group: entry.group, isDirectory: false,
                                   into: &listed) else { continue }
            guard let member = unpacked.members[entry.path], let data = member.data else {
                problem(entry.path, "listed in \(SecretBundleManifest.memberName) but missing from the archive (or not a regular file)")
                continue
            }
            guard data.count == entry.size, Hex.lower(try Digest.sha256(data)) == entry.sha256.lowercased() else {
                problem(entry.path, "SHA-256 does not match \(SecretBundleManifest.memberName): the bundle was altered or damaged")
                continue
            }
            guard member.mode == mode, member.owner == entry.owner, member.group == entry.group else {
                problem(entry.path, "the archive says \(ModeText.format(member.mode)) \(member.owner):\(member.group), \(SecretBundleManifest.memberName) says \(entry.mode) \(entry.owner):\(entry.group)")
                continue
            }
            files[entry.path] = data
        }
        var directories: Set<String> = []
        for entry in manifest.directories {
            guard let mode = admit(entry.path, mode: entry.mode, owner: entry.owner, group: entry.group, isDirectory: true,
                                   into: &directories) else { continue }
            if let member = unpacked.members[entry.path] {
                guard member.kind == .directory, member.mode == mode, member.owner == entry.owner, member.group == entry.group else {
                    problem(entry.path, "the archive member does not match \(SecretBundleManifest.memberName)")
                    continue
                }
            }
        }
        for (path, member) in unpacked.members.sorted(by: { $0.key < $1.key }) where !listed.contains(path) && !directories.contains(path) {
            if member.kind == .directory, let refusal = layout.disagreement(path: path, mode: member.mode, owner: member.owner, group: member.group, isDirectory: true) {
                problem(path, refusal)
            } else {
                problem(path, "in the archive but not in \(SecretBundleManifest.memberName)")
            }
        }
        return (files, problems)
    }
}

extension Hex {
    static func lower(_ bytes: [UInt8]) -> String { upper(bytes).lowercased() }
}

extension Data {
    /// Overwrites the bytes in place (best effort: copies Foundation made earlier are not reached).
    package mutating func wipe() {
        guard !isEmpty else { return }
        resetBytes(in: startIndex..<endIndex)
    }
}
