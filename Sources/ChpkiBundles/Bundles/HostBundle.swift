import ChpkiBase
import ChpkiPlatform
import Foundation

/// One file of a host's bundle: where it goes under the host's root, what it holds, who owns it.
public struct BundleFile: Sendable, Equatable {
    /// What a file holds: bytes anyone may read (certificates, configuration), or bytes with a
    /// private key in them, kept in wiped memory (`SecretBytes`) from the CA until written.
    public enum Body: Sendable, Equatable {
        case plain(Data)
        case secret(SecretBytes)
    }

    /// Relative to the host's root, no leading `/`.
    public var path: String
    public var body: Body
    public var mode: UInt16
    public var owner: String
    public var group: String
    /// The service the file is for (`trust` for trust anchors): what to reload when it changes.
    public var service: String
    /// notBefore of the certificate the file carries, if any: the archive's member times come from it.
    public var issued: Date?
    /// What the file is to its service: decides which operation a change runs, and when (rollout).
    public var role: FileRole
    /// The same roles under the name branch `growth` gave them (`BundleFile.Role.bootstrap`).
    public typealias Role = FileRole
    /// A leaf's root (lower-case hex SHA-256 of its DER), set by the bundle plan from the CA.
    public var root: String?

    public init(_ path: String, _ contents: Data, mode: UInt16, owner: String, group: String? = nil,
                service: String, issued: Date? = nil, role: FileRole = .config) {
        self.init(path, body: .plain(contents), mode: mode, owner: owner, group: group, service: service, issued: issued, role: role)
    }

    /// A file with a private key in it: its bytes stay in `secret`'s wiped memory.
    public init(_ path: String, _ secret: SecretBytes, mode: UInt16, owner: String, group: String? = nil,
                service: String, issued: Date? = nil, role: FileRole = .config) {
        self.init(path, body: .secret(secret), mode: mode, owner: owner, group: group, service: service, issued: issued, role: role)
    }

    public init(_ path: String, body: Body, mode: UInt16, owner: String, group: String? = nil,
                service: String, issued: Date? = nil, role: FileRole = .config) {
        self.path = path
        self.body = body
        self.mode = mode
        self.owner = owner
        self.group = group ?? owner
        self.service = service
        self.issued = issued
        self.role = role
    }

    /// The file's bytes, borrowed for the call: how the writer, the manifest and the archive read
    /// them, so a key is never copied out of its wiped memory.
    public func withContents<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        switch self.body {
        case let .plain(data): return try data.withUnsafeBytes(body)
        case let .secret(bytes): return try bytes.withBytes(body)
        }
    }

    /// A copy of the file's bytes, for tests and tools. For a key file this copy is plain `Data`
    /// that nothing wipes: the bundle path uses `withContents`.
    public var contents: Data {
        switch body {
        case let .plain(data): return data
        case let .secret(bytes): return bytes.data
        }
    }

    /// The file as a tar member's contents: a key's stays in its wiped buffer.
    var tarKind: TarEntry.Kind {
        switch body {
        case let .plain(data): return .file(data)
        case let .secret(bytes): return .secret(bytes)
        }
    }
}

/// A directory chpki creates and owns for a service (never a system directory such as `etc/`).
public struct BundleDirectory: Sendable, Equatable {
    public var path: String
    public var mode: UInt16
    public var owner: String
    public var group: String
    public var service: String

    public init(_ path: String, mode: UInt16, owner: String, group: String? = nil, service: String) {
        self.path = path
        self.mode = mode
        self.owner = owner
        self.group = group ?? owner
        self.service = service
    }
}

/// Everything one host receives: its files, the directories chpki owns there, and the manifest.
public struct HostBundle: Sendable {
    public var host: String
    /// Sorted service names (`minicluster` when its layout was asked for).
    public var services: [String]
    /// Sorted by path, one entry per path.
    public var files: [BundleFile]
    /// Sorted by path, one entry per path.
    public var directories: [BundleDirectory]
    /// Lower-case hex SHA-256 of the root certificate (DER).
    public var caSHA256: String
    /// Every member's time in the archive: fixed by the CA state, so the same state gives the same bytes.
    public var modified: Date
    /// What each service runs when its files change, and its health checks (MANIFEST.json `operations`).
    public var operations: [String: ServiceOperations]

    public init(host: String, services: [String], files: [BundleFile], directories: [BundleDirectory],
                caSHA256: String, fallbackModified: Date, operations: [String: ServiceOperations] = [:]) {
        self.host = host
        self.services = services.sorted()
        var seen = Set<String>()
        self.files = files.filter { seen.insert($0.path).inserted }.sorted { $0.path < $1.path }
        var seenDirectories = Set<String>()
        self.directories = directories.filter { seenDirectories.insert($0.path).inserted }.sorted { $0.path < $1.path }
        self.caSHA256 = caSHA256
        self.modified = files.compactMap(\.issued).max() ?? fallbackModified
        self.operations = operations
    }

    public func manifest() throws -> BundleManifest {
        BundleManifest(
            host: host, services: services, caSHA256: caSHA256,
            directories: directories.map { .init(path: $0.path, owner: $0.owner, group: $0.group, mode: ModeText.format($0.mode), service: $0.service) },
            files: try files.map { file in
                .init(path: file.path, sha256: try file.withContents { try BundleManifest.sha256($0) }, owner: file.owner, group: file.group,
                      mode: ModeText.format(file.mode), service: file.service, role: file.role, root: file.root)
            },
            operations: operations)
    }

    /// The host's tree as tar members, sorted by path: the directories chpki owns, every file, and
    /// the manifest at `var/lib/chpki/MANIFEST.json` (with its directory); never system directories
    /// such as etc/ or home/, so extracting an archive never changes them.
    public func tarEntries(manifestJSON: Data) -> [TarEntry] {
        var entries = directories.map { TarEntry(path: $0.path, kind: .directory, mode: $0.mode, owner: $0.owner, group: $0.group, modified: modified) }
        entries += files.map { TarEntry(path: $0.path, kind: $0.tarKind, mode: $0.mode, owner: $0.owner, group: $0.group, modified: modified) }
        entries.append(TarEntry(path: BundleManifest.directory, kind: .directory, mode: 0o755, modified: modified))
        entries.append(TarEntry(path: BundleManifest.path, kind: .file(manifestJSON), mode: 0o644, modified: modified))
        return entries.sorted { $0.path < $1.path }
    }
}
