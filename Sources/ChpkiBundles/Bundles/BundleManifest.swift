import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import Foundation

/// What a file is to its service (MANIFEST.json format 3, `role`): it decides what a change runs
/// and in which rollout phase.
public enum FileRole: String, Codable, Sendable, CaseIterable {
    /// CA certificates the service trusts: changed everywhere before any leaf (phase trust).
    case trust
    /// A certificate chain the service presents.
    case leaf
    case key
    /// A rendered snippet or environment file.
    case config
    /// Read only when a member first joins (etcd's initial cluster): copied to a host that never
    /// had it, never again, never a reason to run anything.
    case bootstrap
}

/// `var/lib/chpki/MANIFEST.json` inside every host tree and archive (SPEC §4, docs/bundles.md):
/// every file and every directory chpki creates for a service, so a host can check itself and a
/// deployment can tell what changed. Format 3 adds each file's `role` (and a leaf's `root`) and each
/// service's `operations` (ROLLOUT-CONTRACT, docs/bundles.md); format 2 records are still read,
/// as files of unknown role with no operations.
public struct BundleManifest: Codable, Sendable, Equatable {
    /// Beside chpki's own state on the host, never at the root of the tree.
    public static let directory = "var/lib/chpki"
    public static let path = "var/lib/chpki/MANIFEST.json"
    public static let generatorName = "chpki"
    public static let currentFormat = 3
    /// The formats a record may have: format 2 (before roles and operations) is read as such.
    public static let readableFormats: Set<Int> = [2, 3]
    /// The service of trust anchors (and other files that change only with the CA).
    public static let trustService = "trust"

    public struct Directory: Codable, Sendable, Equatable {
        public var path: String
        public var owner: String
        public var group: String
        public var mode: String
        public var service: String
    }

    public struct File: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var owner: String
        public var group: String
        public var mode: String
        public var service: String
        /// Nil in a format-2 record.
        public var role: FileRole? = nil
        /// Leaves only: lower-case hex SHA-256 of the DER of the root the chain ends at.
        public var root: String? = nil
    }

    public var generator: String
    public var format: Int
    public var host: String
    public var services: [String]
    public var caSHA256: String
    public var directories: [Directory]
    public var files: [File]
    /// Service name -> what to run when its files change and how to check it; nil in format 2.
    public var operations: [String: ServiceOperations]?

    enum CodingKeys: String, CodingKey {
        case generator, format, host, services, directories, files, operations
        case caSHA256 = "ca_sha256"
    }

    public init(host: String, services: [String], caSHA256: String, directories: [Directory], files: [File],
                operations: [String: ServiceOperations]? = [:]) {
        generator = Self.generatorName
        format = Self.currentFormat
        self.host = host
        self.services = services
        self.caSHA256 = caSHA256
        self.directories = directories
        self.files = files
        self.operations = operations
    }

    /// The role a file has, from the manifest or (format 2) nil.
    public func role(of path: String) -> FileRole? { files.first { $0.path == path }?.role }

    /// Keys sorted, so the same manifest is always the same bytes: exactly what JSONEncoder prints
    /// with `[.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]` (a test holds the two equal),
    /// written by hand because a JSONEncoder per host was a tenth of a bundle run.
    public func encoded() throws -> Data {
        var out = "{\n"
        out += "  \"ca_sha256\" : \(Self.quoted(caSHA256)),\n"
        out += "  \"directories\" : "
        Self.objects(directories.map { [("group", $0.group), ("mode", $0.mode), ("owner", $0.owner), ("path", $0.path), ("service", $0.service)] },
                     into: &out)
        out += ",\n  \"files\" : "
        Self.objects(files.map { file in
            var pairs = [("group", file.group), ("mode", file.mode), ("owner", file.owner), ("path", file.path)]
            if let role = file.role { pairs.append(("role", role.rawValue)) }
            if let root = file.root { pairs.append(("root", root)) }
            return pairs + [("service", file.service), ("sha256", file.sha256)]
        }, into: &out)
        out += ",\n  \"format\" : \(format),\n"
        out += "  \"generator\" : \(Self.quoted(generator)),\n"
        out += "  \"host\" : \(Self.quoted(host)),\n"
        if let operations {
            out += "  \"operations\" : "
            JSONText.object(operations.sorted { $0.key < $1.key }.map { ($0.key, Self.node($0.value)) }, indent: "  ", into: &out)
            out += ",\n"
        }
        out += "  \"services\" : "
        if services.isEmpty {
            out += "[\n\n  ]"
        } else {
            out += "[\n" + services.map { "    " + Self.quoted($0) }.joined(separator: ",\n") + "\n  ]"
        }
        out += "\n}\n"
        return Data(out.utf8)
    }

    /// One service's operations as JSONEncoder orders them (keys sorted, nil optionals left out).
    static func node(_ operations: ServiceOperations) -> JSONText {
        let commands = { (list: [[String]]) in JSONText.array(list.map { .array($0.map(JSONText.string)) }) }
        var pairs: [(String, JSONText)] = [("health", .array(operations.health.map(node)))]
        if let onConfig = operations.onConfig { pairs.append(("on_config", commands(onConfig))) }
        return .object(pairs + [
            ("on_leaf", commands(operations.onLeaf)),
        ] + (operations.onStart.map { [("on_start", commands($0))] } ?? []) + [
            ("on_trust", commands(operations.onTrust)),
            ("serial", .bool(operations.serial)),
        ])
    }

    static func node(_ check: HealthCheck) -> JSONText {
        var pairs: [(String, JSONText)] = [("address", .string(check.address)), ("cafile", .string(check.cafile))]
        if let certfile = check.certfile { pairs.append(("certfile", .string(certfile))) }
        if let keyfile = check.keyfile { pairs.append(("keyfile", .string(keyfile))) }
        pairs.append(("kind", .string(check.kind.rawValue)))
        if let leaf = check.leaf { pairs.append(("leaf", .string(leaf))) }
        pairs += [("port", .int(check.port)), ("server_name", .string(check.serverName))]
        if let service = check.service { pairs.append(("service", .string(service))) }
        return .object(pairs)
    }

    /// An array of flat string-valued objects (keys already sorted) at the manifest's second level.
    private static func objects(_ items: [[(String, String)]], into out: inout String) {
        guard !items.isEmpty else { out += "[\n\n  ]"; return }
        out += "[\n"
        out += items.map { pairs in
            "    {\n" + pairs.map { "      \"\($0.0)\" : \(quoted($0.1))" }.joined(separator: ",\n") + "\n    }"
        }.joined(separator: ",\n")
        out += "\n  ]"
    }

    /// A JSON string as JSONEncoder writes it: `"` and `\\` escaped, control characters as
    /// \b \f \n \r \t or \u00XX, everything else (`/` and non-ASCII included) as is.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{00}"..."\u{1F}":
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// What `encoded()` must equal: Foundation's encoder with the manifest's settings (for tests).
    func encodedByFoundation() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self) + Data("\n".utf8)
    }

    /// Parses and checks a manifest: chpki's, format 2 or 3, every path relative and inside the root,
    /// every mode octal. `label` names the file in the one-line error.
    public static func decode(_ data: Data, label: String) throws -> BundleManifest {
        let manifest: BundleManifest
        do { manifest = try JSONDecoder().decode(BundleManifest.self, from: data) } catch {
            throw ChpkiError.input(.manifestInvalid, file: label, field: nil, "not a chpki MANIFEST.json (format \(currentFormat)): \(Self.reason(error))")
        }
        guard manifest.generator == generatorName else {
            throw ChpkiError.input(.manifestInvalid, file: label, field: "generator", "is '\(manifest.generator)', not chpki")
        }
        guard readableFormats.contains(manifest.format) else {
            throw ChpkiError.input(.manifestUnsupportedFormat, file: label, field: "format", "is \(manifest.format); this chpki reads formats 2 and \(currentFormat) (lay the bundle out again)")
        }
        for (path, mode) in manifest.files.map({ ($0.path, $0.mode) }) + manifest.directories.map({ ($0.path, $0.mode) }) {
            guard isSafe(path) else { throw ChpkiError.input(.manifestUnsafePath, file: label, field: "path", "'\(path)' is not a relative path inside the root") }
            guard ModeText.parse(mode) != nil else { throw ChpkiError.input(.manifestInvalid, file: label, field: "mode", "'\(mode)' of \(path) is not an octal mode") }
        }
        return manifest
    }

    /// Relative, no `.`/`..`/empty component, no NUL: joining it to a root never leaves the root.
    package static func isSafe(_ path: String) -> Bool {
        guard !path.isEmpty, !path.hasPrefix("/"), !path.contains("\0") else { return false }
        return !path.split(separator: "/", omittingEmptySubsequences: false).contains { $0.isEmpty || $0 == "." || $0 == ".." }
    }

    private static func reason(_ error: Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, _): return "no '\(key.stringValue)'"
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
            return "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        default: return "not valid JSON"
        }
    }

    /// Lower-case hex SHA-256, as `sha256sum` prints it.
    public static func sha256(_ data: Data) throws -> String {
        Hex.upper(try Digest.sha256(data)).lowercased()
    }

    public static func sha256(_ bytes: UnsafeRawBufferPointer) throws -> String {
        Hex.upper(try Digest.sha256(bytes)).lowercased()
    }
}
