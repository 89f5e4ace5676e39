import ChpkiBase
import ChpkiPlatform
import Foundation

/// The Chef Backend secrets carrier (reference 001 Step 2): `/etc/chef-backend/chef-backend-secrets.json`,
/// written by `chef-backend-ctl create-cluster` on the bootstrap backend, is what every joining
/// backend needs (`chef-backend-ctl join-cluster LEADER -s FILE`). It travels in a secret bundle
/// like the frontend's: the same manifest, archive, envelope, limits and rooted installer.
public enum BackendSecretsBundle {
    public static let format = "chpki-backend-bundle"
    public static let directory = "etc/chef-backend"
    public static let path = "etc/chef-backend/chef-backend-secrets.json"

    /// root:root 0600 (as chef-backend writes it); the directory 0755 when chpki has to create it,
    /// as the package does: chef_pgsql reads other files in it (reference 001, "Services and Secrets").
    public static let layout = SecretBundleLayout(
        name: "Chef Backend secrets bundle", format: format,
        files: [SecretBundleLayout.File(path: path, mode: 0o600)],
        directories: [SecretBundleLayout.Directory(path: directory, mode: 0o755)],
        serviceAccount: nil)

    /// What `create-cluster` writes and `join-cluster` reads: the PostgreSQL superuser and
    /// replication passwords, the etcd cluster token and the Elasticsearch cluster name (a
    /// joining node with another token or name forms its own cluster instead of joining).
    public static let requiredCredentials = [
        (group: "postgresql", names: ["db_superuser_password", "replication_password"]),
        (group: "etcd", names: ["initial_cluster_token"]),
        (group: "elasticsearch", names: ["cluster_name"]),
    ]

    /// The checked secrets, or the one line that says why not (naming `label` and the field).
    public static func validate(_ data: Data, label: String) throws -> VeilSecrets {
        let secrets: VeilSecrets
        do {
            secrets = try VeilSecrets.parse(data)
        } catch let failure as VeilSecrets.Failure {
            throw ChpkiError.input(.secretsInvalid, file: label, field: nil, failure.description)
        }
        if let missing = secrets.missing(requiredCredentials, purpose: "a joining backend needs them") {
            throw ChpkiError.input(.secretsInvalid, file: label, field: nil, missing)
        }
        return secrets
    }

    /// The bundle of the backend at `root` (`/` on the bootstrap backend itself).
    public static func collect(root: String) throws -> (data: Data, secrets: VeilSecrets, modified: Date) {
        guard let status = try FileStatus.of(root) else { throw ChpkiError.input(.fileMissing, file: root, field: "--from", "no such directory") }
        guard status.kind == .directory else { throw ChpkiError.input(.fileNotDirectory, file: root, field: "--from", "not a directory") }
        let file = Path.join(root, path)
        switch RegularFile.read(file, limit: SecretBundleLimits.tar.memberSize) {
        case let .success((data, status)):
            guard data.count <= SecretBundleLimits.tar.memberSize else {
                throw ChpkiError.input(.secretsTooLarge, file: file, field: nil, "\(data.count) bytes, more than the \(SecretBundleLimits.tar.memberSize) a secret bundle may hold per file")
            }
            return (data, try validate(data, label: file), status.modified)
        case .failure(.missing):
            throw ChpkiError.input(.fileMissing, file: file, field: nil, "no such file (run 'chef-backend-ctl create-cluster' on the bootstrap backend first)")
        case .failure(.notRegular):
            throw ChpkiError.input(.fileNotRegular, file: file, field: nil, "not a regular file")
        case let .failure(failure):
            throw ChpkiError.input(failure.code, file: file, field: nil, failure.reason)
        }
    }

    public static func archive(_ data: Data, modified: Date, source: String) throws -> Data {
        let files = [(path: path, data: data)]
        return try SecretBundleArchive.write(try SecretBundleArchive.manifest(layout, files: files), files: files,
                                             modified: modified, source: source)
    }

    /// Opens a bundle file: the checked secrets file's bytes.
    public static func open(_ data: Data, file: String, passphrase: () throws -> Passphrase) throws -> (data: Data, secrets: VeilSecrets, encrypted: Bool) {
        let unpacked = try SecretBundleArchive.open(data, file: file, expected: "Chef Backend secrets bundle", passphrase: passphrase)
        guard unpacked.manifest.format == format else {
            let hint = unpacked.manifest.format == FrontendManifest.format ? " (a frontend bundle: use install-frontend)" : ""
            throw ChpkiError.input(.secretsWrongKind, file: file, field: "\(SecretBundleManifest.memberName) format", "'\(unpacked.manifest.format)' is not \(format)\(hint)")
        }
        let (files, problems) = try SecretBundleArchive.check(unpacked, layout: layout, file: file)
        guard problems.isEmpty else { throw ChpkiError(.secretsInvalid, problems: problems) }
        guard let secretsData = files[path] else {
            throw ChpkiError.input(.secretsMissingFile, file: file, field: path, "missing from the bundle")
        }
        let secrets = try validate(secretsData, label: "\(file): \(path)")
        return (secretsData, secrets, unpacked.encrypted)
    }
}
