import ChpkiPlatform
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
        // The modes of SPEC §5; every file is installed root:root (reconfigure hands the service
        // account what it needs).
        return [
            FrontendFile(.serverConfig, "\(etc)/\(serverConfigName)", .required, mode: 0o640),
            FrontendFile(.darkLaunch, "\(etc)/dark_launch_features.json", chefOptional, mode: 0o644),
            FrontendFile(.pivotalConfig, "\(etc)/pivotal.rb", chefOptional, mode: 0o644),
            FrontendFile(.privateChefShell, "\(etc)/private-chef.sh", chefOptional, mode: 0o644),
            FrontendFile(.webuiPublic, "\(etc)/webui_pub.pem", keyRule("webui_key"), mode: 0o644),
            FrontendFile(.webuiPrivate, "\(etc)/webui_priv.pem", keyRule("webui_key"), mode: 0o600),
            FrontendFile(.pivotalKey, "\(etc)/pivotal.pem", keyRule("superuser_key"), mode: 0o600),
            FrontendFile(.secrets, "\(etc)/\(secretsName)", .required, mode: 0o600),
            FrontendFile(.migrationLevel, "\(upgradesDirectory)/migration-level", .required, mode: 0o644),
            FrontendFile(.bootstrapped, "\(dataDirectory)/bootstrapped", .required, mode: 0o600),
        ]
    }

    /// Directories the bundle lists so install can create them when missing (root-owned 0755:
    /// the services, running as the service account, must traverse them).
    public var directories: [String] { [configDirectory, dataDirectory, upgradesDirectory] }

    /// The flavour's system user (the Chef packages' `opscode`, kept by Cinc's rebuild): a
    /// manifest may name it as an owner, but install writes root:root as the table says.
    public var serviceAccount: String { "opscode" }

    /// The one table that bundle-frontend writes, install-frontend enforces and --compare reads.
    public var layout: SecretBundleLayout {
        SecretBundleLayout(
            name: "\(rawValue) frontend bundle", format: FrontendManifest.format,
            files: files.map { SecretBundleLayout.File(path: $0.path, mode: $0.mode) },
            directories: directories.map { SecretBundleLayout.Directory(path: $0, mode: 0o755) },
            serviceAccount: serviceAccount)
    }

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
    /// The mode SPEC §5 fixes: the bundle carries it and install writes it, whatever the source had.
    public var mode: UInt16

    init(_ role: Role, _ path: String, _ requirement: Requirement, mode: UInt16) {
        self.role = role
        self.path = path
        self.requirement = requirement
        self.mode = mode
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
