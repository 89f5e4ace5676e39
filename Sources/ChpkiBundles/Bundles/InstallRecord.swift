import ChpkiBase
import ChpkiModel
import ChpkiPlatform
import Foundation

/// What a host last installed, as the controller recorded it (`chpki-rotate --state DIR`,
/// `DIR/<fqdn>.json`: a copy of the host's MANIFEST.json), and the same reader for the new
/// manifests. Recorded state is data from outside (SPEC §8): it is read with a size limit and
/// refused, naming the file and the field, unless it is exactly what chpki writes — the manifest
/// schema, valid host and service names (ServiceName's rule), and only paths, owners and groups
/// the service descriptors lay out (InstallPaths). Nothing in a refused record reaches a command.
public enum InstallRecord {
    /// A host's manifest is a few hundred bytes per file; this is thousands of files.
    public static let sizeLimit = 4 * 1024 * 1024

    /// The record at `path`, nil when there is none (the host was never installed from here).
    /// `host`: the FQDN the record must be for.
    public static func read(_ path: String, host: String?) throws -> BundleManifest? {
        switch RegularFile.read(path, limit: sizeLimit) {
        case let .success((data, _)): return try parse(data, label: path, host: host)
        case .failure(.missing): return nil
        case let .failure(.notRegular(kind)): throw ChpkiError.input(.fileNotRegular, file: path, field: nil, "is a \(kind), not a file")
        case let .failure(failure): throw ChpkiError.input(failure.code, file: path, field: nil, failure.reason)
        }
    }

    /// Parses and checks one manifest; `label` names it in the one-line error.
    public static func parse(_ data: Data, label: String, host: String?) throws -> BundleManifest {
        guard data.count <= sizeLimit else {
            throw ChpkiError.input(.fileTooLarge, file: label, field: nil, "is larger than \(sizeLimit) bytes; a chpki manifest is far smaller")
        }
        let manifest: BundleManifest
        do { manifest = try JSONDecoder().decode(BundleManifest.self, from: data) } catch {
            throw ChpkiError.input(.manifestInvalid, file: label, field: field(of: error), "not a chpki MANIFEST.json (format \(BundleManifest.currentFormat)): \(reason(error))")
        }
        try check(manifest, paths: try InstallPaths.current(), host: host) { field, reason in
            ChpkiError.input(.manifestInvalid, file: label, field: field, reason)
        }
        return manifest
    }

    /// Every field against what chpki writes; `refuse(field, reason)` makes the error.
    static func check(_ manifest: BundleManifest, paths: InstallPaths, host: String?,
                      refuse: (String, String) -> ChpkiError) throws {
        let shown = InstallPaths.shown
        guard manifest.generator == BundleManifest.generatorName else {
            throw refuse("generator", "is '\(shown(manifest.generator))', not \(BundleManifest.generatorName)")
        }
        guard BundleManifest.readableFormats.contains(manifest.format) else {
            throw refuse("format", "is \(manifest.format); this chpki reads formats 2 and \(BundleManifest.currentFormat) (delete the record: the host is then installed in full)")
        }
        if manifest.format >= 3 {
            guard let operations = manifest.operations else { throw refuse("operations", "missing (format \(manifest.format) lists each service's)") }
            guard operations.count <= 256 else { throw refuse("operations", "lists \(operations.count) services; chpki lays out far fewer") }
            for (service, ops) in operations.sorted(by: { $0.key < $1.key }) {
                guard ServiceName.problem(with: service) == nil else { throw refuse("operations", "'\(shown(service))' is not a service name") }
                try ops.check(at: "operations.\(service)", refuse: refuse)
            }
        }
        if HostName.problem(with: manifest.host) != nil || manifest.host != manifest.host.lowercased() {
            throw refuse("host", "'\(shown(manifest.host))' is not a host name")
        }
        if let host, manifest.host != host { throw refuse("host", "is '\(manifest.host)', not \(host)") }
        for (index, service) in manifest.services.enumerated() where ServiceName.problem(with: service) != nil {
            throw refuse("services[\(index)]", "'\(shown(service))' is not a service name")
        }
        guard isDigest(manifest.caSHA256) else { throw refuse("ca_sha256", "is not a lower-case hex SHA-256") }
        var seen = Set<String>()
        for (index, entry) in manifest.directories.enumerated() {
            let at = "directories[\(index)]"
            try checkEntry(at, service: entry.service, owner: entry.owner, group: entry.group, mode: entry.mode, paths: paths, refuse: refuse)
            if let problem = paths.directoryProblem(entry.path, service: entry.service) { throw refuse("\(at).path", problem) }
            guard seen.insert("d" + entry.path).inserted else { throw refuse("\(at).path", "'\(entry.path)' is listed twice") }
        }
        for (index, entry) in manifest.files.enumerated() {
            let at = "files[\(index)]"
            try checkEntry(at, service: entry.service, owner: entry.owner, group: entry.group, mode: entry.mode, paths: paths, refuse: refuse)
            if let problem = paths.fileProblem(entry.path, service: entry.service) { throw refuse("\(at).path", problem) }
            guard isDigest(entry.sha256) else { throw refuse("\(at).sha256", "is not a lower-case hex SHA-256") }
            if manifest.format >= 3, entry.role == nil { throw refuse("\(at).role", "missing (format \(manifest.format) gives every file a role)") }
            if let root = entry.root {
                guard entry.role == .leaf else { throw refuse("\(at).root", "only a leaf names its root") }
                guard isDigest(root) else { throw refuse("\(at).root", "is not a lower-case hex SHA-256") }
            }
            guard seen.insert("f" + entry.path).inserted else { throw refuse("\(at).path", "'\(entry.path)' is listed twice") }
        }
    }

    private static func checkEntry(_ at: String, service: String, owner: String, group: String, mode: String, paths: InstallPaths,
                                   refuse: (String, String) -> ChpkiError) throws {
        let shown = InstallPaths.shown
        if ServiceName.problem(with: service) != nil { throw refuse("\(at).service", "'\(shown(service))' is not a service name") }
        guard paths.accounts.contains(owner) else { throw refuse("\(at).owner", "'\(shown(owner))' is not an owner chpki gives a file") }
        guard paths.accounts.contains(group) else { throw refuse("\(at).group", "'\(shown(group))' is not a group chpki gives a file") }
        guard ModeText.parse(mode) != nil else { throw refuse("\(at).mode", "'\(shown(mode))' is not an octal mode") }
    }

    private static func isDigest(_ text: String) -> Bool {
        text.utf8.count == 64 && text.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }

    /// `files[3].path` for the field a decoding error is about.
    private static func field(of error: Error) -> String? {
        let path: [CodingKey]
        switch error {
        case let DecodingError.keyNotFound(key, context): path = context.codingPath + [key]
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context), let DecodingError.dataCorrupted(context):
            path = context.codingPath
        default: return nil
        }
        guard !path.isEmpty else { return nil }
        return path.reduce("") { text, key in
            if let index = key.intValue { return text + "[\(index)]" }
            return text.isEmpty ? key.stringValue : text + "." + key.stringValue
        }
    }

    private static func reason(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound: return "missing"
        case DecodingError.typeMismatch, DecodingError.valueNotFound: return "wrong type"
        default: return "not valid JSON"
        }
    }
}
