import Foundation

/// Which packaging of the Infra Server a frontend runs (SPEC §5): Cinc (`/etc/cinc-project`,
/// reference 000) or Chef (`/etc/opscode`, reference 001 Step 6).
public enum FrontendFlavor: String, CaseIterable, Sendable, Codable {
    case cinc, chef

    /// Relative to the filesystem root: archive members and manifest paths never start with `/`.
    public var configDirectory: String { self == .cinc ? "etc/cinc-project" : "etc/opscode" }
    public var dataDirectory: String { self == .cinc ? "var/opt/cinc-project" : "var/opt/opscode" }
    public var upgradesDirectory: String { dataDirectory + "/upgrades" }
    public var serverConfigName: String { self == .cinc ? "cinc-server.rb" : "chef-server.rb" }
    public var secretsName: String { self == .cinc ? "private-cinc-secrets.json" : "private-chef-secrets.json" }
    /// The command the operator runs after installing a bundle.
    public var ctl: String { self == .cinc ? "cinc-server-ctl" : "chef-server-ctl" }

    /// The other flavour's config directory: when only it exists, the operator chose the wrong flavour.
    var other: FrontendFlavor { self == .cinc ? .chef : .cinc }

    /// The files of the bundle in install order: configuration, keys, secrets, then the migration
    /// level, and the `bootstrapped` marker last, so an interrupted install never leaves a node
    /// that skips its bootstrap without the secrets that go with it.
    public var files: [FrontendFile] {
        let etc = configDirectory
        // Chef ≥ 12.14 keeps the keys in the secrets file and may not write them to disk
        // (insecure_addon_compat false); reference 001 copies them only for older servers.
        let keyRule: (String) -> FrontendFile.Requirement = { credential in
            self == .cinc ? .required : .unlessInSecrets(credential)
        }
        let chefOptional: FrontendFile.Requirement = self == .cinc ? .required : .optional
        return [
            FrontendFile(.serverConfig, "\(etc)/\(serverConfigName)", .required, forbiddenModeBits: 0o007),
            FrontendFile(.darkLaunch, "\(etc)/dark_launch_features.json", chefOptional),
            FrontendFile(.pivotalConfig, "\(etc)/pivotal.rb", chefOptional),
            FrontendFile(.privateChefShell, "\(etc)/private-chef.sh", chefOptional),
            FrontendFile(.webuiPublic, "\(etc)/webui_pub.pem", keyRule("webui_key")),
            FrontendFile(.webuiPrivate, "\(etc)/webui_priv.pem", keyRule("webui_key"), forbiddenModeBits: 0o077),
            FrontendFile(.pivotalKey, "\(etc)/pivotal.pem", keyRule("superuser_key"), forbiddenModeBits: 0o077),
            FrontendFile(.secrets, "\(etc)/\(secretsName)", .required, forbiddenModeBits: 0o077),
            FrontendFile(.migrationLevel, "\(upgradesDirectory)/migration-level", .required),
            FrontendFile(.bootstrapped, "\(dataDirectory)/bootstrapped", .required),
        ]
    }

    /// Directories the bundle records (owner, group, mode) so install can create them when missing.
    public var directories: [String] { [configDirectory, dataDirectory, upgradesDirectory] }

    public func file(_ role: FrontendFile.Role) -> FrontendFile {
        files.first { $0.role == role }!
    }
}

/// One file of the frontend secret bundle.
public struct FrontendFile: Sendable, Equatable {
    public enum Role: String, Sendable, Equatable {
        case serverConfig, darkLaunch, pivotalConfig, privateChefShell, webuiPublic, webuiPrivate, pivotalKey
        case secrets, migrationLevel, bootstrapped
    }

    public enum Requirement: Sendable, Equatable {
        case required
        case optional
        /// Required unless `chef-server.<credential>` is in the secrets file.
        case unlessInSecrets(String)
    }

    public var role: Role
    /// Relative to the root: `etc/cinc-project/pivotal.pem`.
    public var path: String
    public var requirement: Requirement
    /// Permission bits the file must not have (SPEC §5: the secrets file and private keys 0600,
    /// the server .rb not world-readable). A bundle carries the mode with these bits cleared.
    public var forbiddenModeBits: UInt16

    init(_ role: Role, _ path: String, _ requirement: Requirement, forbiddenModeBits: UInt16 = 0) {
        self.role = role
        self.path = path
        self.requirement = requirement
        self.forbiddenModeBits = forbiddenModeBits
    }

    public var name: String { Path.name(of: path) }
}

/// A file's bytes and metadata, read from a frontend or from a bundle.
public struct FrontendFileData: Sendable, Equatable {
    public var path: String
    public var data: Data
    public var mode: UInt16
    public var owner: String
    public var group: String
    public var modified: Date

    public init(path: String, data: Data, mode: UInt16, owner: String, group: String, modified: Date) {
        self.path = path
        self.data = data
        self.mode = mode
        self.owner = owner
        self.group = group
        self.modified = modified
    }
}

/// A directory's metadata, for creating it on the new frontend.
public struct FrontendDirectory: Sendable, Equatable, Codable {
    public var path: String
    public var mode: UInt16
    public var owner: String
    public var group: String
}

/// Octal mode text, as `ls`/`stat -c %a` users read it: `0600`.
enum ModeText {
    static func format(_ mode: UInt16) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    static func parse(_ text: String) -> UInt16? {
        guard (3...4).contains(text.count), text.allSatisfy({ ("0"..."7").contains($0) }),
              let value = UInt16(text, radix: 8), value <= 0o7777 else { return nil }
        return value
    }
}
