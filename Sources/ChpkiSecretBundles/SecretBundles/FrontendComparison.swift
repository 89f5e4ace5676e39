import ChpkiBase
import ChpkiPlatform
import Foundation

/// Whether two frontends agree: the same secrets, keys, migration level and marker, and the same
/// copied configuration. Differences are named, never shown: a differing secret is reported by
/// its name, a differing key by the SHA-256 of its public half.
public struct FrontendComparison: Sendable, Encodable {
    public var first: String
    public var second: String
    public var flavor: FrontendFlavor
    public var differences: [String] = []
    /// Differences that do not count against agreement (a frontend's own server settings).
    public var notes: [String] = []
    /// What was found equal, for the report.
    public var agreements: [String] = []

    public var agree: Bool { differences.isEmpty }

    enum CodingKeys: String, CodingKey { case first, second, flavor, agree, differences, notes, agreements }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(first, forKey: .first)
        try container.encode(second, forKey: .second)
        try container.encode(flavor, forKey: .flavor)
        try container.encode(agree, forKey: .agree)
        try container.encode(differences, forKey: .differences)
        try container.encode(notes, forKey: .notes)
        try container.encode(agreements, forKey: .agreements)
    }

    public static func compare(_ first: String, _ second: String, flavor: FrontendFlavor) throws -> FrontendComparison {
        let a = try FrontendCollector.collect(root: first, flavor: flavor, option: "--compare", normalize: false)
        let b = try FrontendCollector.collect(root: second, flavor: flavor, option: "--compare", normalize: false)
        let unreadable = a.problems + b.problems
        guard unreadable.isEmpty else { throw ChpkiError(.frontendInvalid, problems: unreadable) }
        var result = FrontendComparison(first: first, second: second, flavor: flavor)
        func side(_ isFirst: Bool) -> String { isFirst ? first : second }

        // Secrets, by value.
        let secretsFile = flavor.file(.secrets)
        func secrets(_ collected: FrontendCollector.Collected, root: String) throws -> VeilSecrets? {
            guard let data = collected.files[.secrets]?.data else { return nil }
            do {
                return try VeilSecrets.parse(data)
            } catch let failure as VeilSecrets.Failure {
                throw ChpkiError.input(.secretsInvalid, file: Path.join(root, secretsFile.path), field: nil, failure.description)
            }
        }
        let secretsA = try secrets(a, root: first), secretsB = try secrets(b, root: second)
        switch (secretsA, secretsB) {
        case let (x?, y?):
            var differing = 0
            let pairs = Set(x.pairs + y.pairs).sorted { ($0.group, $0.name) < ($1.group, $1.name) }
            for pair in pairs {
                let name = pair.group.isEmpty ? pair.name : "\(pair.group).\(pair.name)"
                switch (x.value(pair.group, pair.name), y.value(pair.group, pair.name)) {
                case let (p?, q?) where p != q:
                    result.differences.append("secret \(name) differs")
                    differing += 1
                case (nil, _?):
                    result.differences.append("secret \(name) only on \(second)")
                    differing += 1
                case (_?, nil):
                    result.differences.append("secret \(name) only on \(first)")
                    differing += 1
                default: break
                }
            }
            if let p = x.hasher, let q = y.hasher, p != q {
                result.differences.append("\(secretsFile.name): the veil hasher settings differ (new credentials would be derived differently)")
            }
            if differing == 0 { result.agreements.append("\(x.count) secrets in \(secretsFile.name)") }
        case (nil, nil):
            result.notes.append("\(secretsFile.name) is missing on both")
        case (nil, _):
            result.differences.append("\(secretsFile.name) missing on \(first)")
        case (_, nil):
            result.differences.append("\(secretsFile.name) missing on \(second)")
        }

        // Keys, by public half.
        for role in [FrontendFile.Role.pivotalKey, .webuiPrivate, .webuiPublic] {
            let file = flavor.file(role)
            func fingerprint(_ data: Data) -> String {
                let value = role == .webuiPublic
                    ? FrontendValidation.publicKeyFingerprint(data) : FrontendValidation.privateKeyFingerprint(data)
                return value ?? "(not a PEM key)"
            }
            let x: String? = a.files[role].map { fingerprint($0.data) }
            let y: String? = b.files[role].map { fingerprint($0.data) }
            switch (x, y) {
            case (nil, nil): continue
            case (nil, _): result.differences.append("\(file.name) missing on \(first)")
            case (_, nil): result.differences.append("\(file.name) missing on \(second)")
            case let (p?, q?):
                if p == q && !p.hasPrefix("(") { result.agreements.append("\(file.name) (SHA-256 \(p))") }
                else { result.differences.append("\(file.name): different keys (\(first): SHA-256 \(p); \(second): SHA-256 \(q))") }
            }
        }

        // Migration level, by value.
        let levelFile = flavor.file(.migrationLevel)
        func level(_ collected: FrontendCollector.Collected) -> String? {
            guard let data = collected.files[.migrationLevel]?.data else { return nil }
            return (try? MigrationLevel.parse(data))?.description ?? "invalid"
        }
        switch (level(a), level(b)) {
        case let (p?, q?) where p == q && p != "invalid": result.agreements.append("migration level \(p)")
        case let (p, q) where p != q || p == "invalid":
            result.differences.append("\(levelFile.name): \(first) \(p ?? "missing"), \(second) \(q ?? "missing")")
        default: result.notes.append("\(levelFile.name) is missing on both")
        }

        // The marker.
        let marker = flavor.file(.bootstrapped)
        switch (a.files[.bootstrapped] != nil, b.files[.bootstrapped] != nil) {
        case (true, true): result.agreements.append("bootstrapped")
        case (false, false): result.notes.append("\(marker.name) is missing on both")
        case (let p, _): result.differences.append("\(marker.name) missing on \(side(!p))")
        }

        // Copied configuration, by bytes; the server .rb may hold the frontend's own settings.
        for role in [FrontendFile.Role.serverConfig, .darkLaunch, .pivotalConfig, .privateChefShell] {
            let file = flavor.file(role)
            let x = a.files[role]?.data, y = b.files[role]?.data
            guard x != y else { continue }
            let text = x == nil ? "\(file.name) missing on \(first)" : y == nil ? "\(file.name) missing on \(second)" : "\(file.name) differs"
            if role == .serverConfig {
                result.notes.append("\(text) (not counted: a frontend's own settings, such as its fqdn, may differ)")
            } else {
                result.differences.append(text)
            }
        }

        // Modes: a secrets file copied with the wrong mode is a known failure. Against each other
        // (a difference), and against SPEC §5's table, which install-frontend writes (a note).
        for file in flavor.files {
            for (collected, root) in [(a, first), (b, second)] {
                guard let mode = collected.files[file.role]?.mode, mode != file.mode else { continue }
                result.notes.append("\(file.name): mode \(ModeText.format(mode)) on \(root), SPEC §5's table says \(ModeText.format(file.mode)) (install-frontend writes that)")
            }
            guard let x = a.files[file.role], let y = b.files[file.role], x.mode != y.mode else { continue }
            result.differences.append("\(file.name): mode \(ModeText.format(x.mode)) on \(first), \(ModeText.format(y.mode)) on \(second)")
        }
        return result
    }
}
