import Foundation

/// One file of a host's bundle: where it goes under the host's root, what it holds, its mode and owner.
public struct BundleFile: Sendable, Equatable {
    public var path: String
    public var contents: Data
    public var mode: UInt16
    public var owner: String
    public var group: String

    public init(_ path: String, _ contents: Data, mode: UInt16, owner: String, group: String? = nil) {
        self.path = path
        self.contents = contents
        self.mode = mode
        self.owner = owner
        self.group = group ?? owner
    }
}

/// Everything one host receives: its tree and the manifest describing it.
public struct HostBundle: Sendable {
    public var host: String
    public var services: [String]
    public var files: [BundleFile]
    public var caFingerprint: String

    public struct Manifest: Codable, Sendable {
        public struct Entry: Codable, Sendable {
            public var path: String
            public var sha256: String
            public var owner: String
            public var group: String
            public var mode: String
        }

        public var generator: String
        public var host: String
        public var services: [String]
        public var caSHA256: String
        public var files: [Entry]

        enum CodingKeys: String, CodingKey {
            case generator, host, services, files
            case caSHA256 = "ca_sha256"
        }
    }

    public static let manifestName = "MANIFEST.json"

    public func manifest() throws -> Manifest {
        Manifest(generator: "chpki", host: host, services: services, caSHA256: caFingerprint,
                 files: try files.sorted { $0.path < $1.path }.map { file in
                     Manifest.Entry(path: file.path, sha256: Hex.upper(try Digest.sha256(file.contents)).lowercased(),
                                    owner: file.owner, group: file.group, mode: String(format: "%04o", file.mode))
                 })
    }

    public func manifestJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(try manifest()) + Data("\n".utf8)
    }

    /// The host's tree as a tar archive: each file, and each directory above it that the bundle
    /// itself introduces, never system directories such as etc/ or home/.
    public func tarEntries(now: Date) -> [TarEntry] {
        var entries: [TarEntry] = []
        var directories = Set<String>()
        for file in files.sorted(by: { $0.path < $1.path }) {
            for directory in BundleLayout.privateDirectories(containing: file.path) where directories.insert(directory.path).inserted {
                entries.append(TarEntry(path: directory.path, kind: .directory, mode: directory.mode, owner: file.owner,
                                        group: file.group, modified: now))
            }
            entries.append(TarEntry(path: file.path, kind: .file(file.contents), mode: file.mode, owner: file.owner,
                                    group: file.group, modified: now))
        }
        return entries
    }
}
