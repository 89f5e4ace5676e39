import ChpkiOpenSSL
import Foundation

/// `/var/opt/<flavour>/upgrades/migration-level`: one JSON object `{"major":M,"minor":N}`. The server
/// reads anything else as level 0.0 and re-runs every migration (SPEC §5).
public struct MigrationLevel: Sendable, Equatable, Codable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public var description: String { "\(major).\(minor)" }

    public static func parse(_ data: Data) throws -> MigrationLevel {
        do {
            _ = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw VeilSecrets.Failure(field: nil, reason: "not valid JSON (\(JSONProblem.describe(error))); the server would treat the level as 0.0 and re-run every migration")
        }
        let text = String(decoding: data, as: UTF8.self)
        let shape = #/^\s*\{\s*"(major|minor)"\s*:\s*(0|[1-9][0-9]{0,8})\s*,\s*"(major|minor)"\s*:\s*(0|[1-9][0-9]{0,8})\s*\}\s*$/#
        guard let match = text.wholeMatch(of: shape), match.1 != match.3,
              let first = Int(match.2), let second = Int(match.4) else {
            throw VeilSecrets.Failure(field: nil, reason: "not one JSON object {\"major\":M,\"minor\":N} with integer M and N; the server would treat the level as 0.0 and re-run every migration")
        }
        let level = match.1 == "major" ? MigrationLevel(major: first, minor: second) : MigrationLevel(major: second, minor: first)
        guard level.major >= 1 else {
            throw VeilSecrets.Failure(field: nil, reason: "major is 0: no migration recorded; the server would re-run every migration")
        }
        return level
    }
}

/// The checks of SPEC §5 on a frontend's files, wherever they come from (a frontend's filesystem
/// or a bundle). Every problem is one line; none quotes a secret (keys are named by the SHA-256 of
/// their public half).
public struct FrontendValidation: Sendable {
    public var problems: [String] = []
    public var secrets: VeilSecrets?
    public var migrationLevel: MigrationLevel?
    /// File or credential name -> SHA-256 fingerprint of its public key.
    public var fingerprints: [String: String] = [:]

    /// - Parameters:
    ///   - files: the files that could be read, by role.
    ///   - absent: the roles with no file (a file that exists but could not be read is in neither).
    ///   - label: how a problem names a file (its path on disk, or `BUNDLE: member`).
    public static func validate(flavor: FrontendFlavor, files: [FrontendFile.Role: FrontendFileData],
                                absent: Set<FrontendFile.Role>, label: (FrontendFile) -> String) -> FrontendValidation {
        var result = FrontendValidation()
        let secretsFile = flavor.file(.secrets)
        let secretsName = secretsFile.name
        func problem(_ file: FrontendFile, _ text: String) { result.problems.append("\(label(file)): \(text)") }

        if let data = files[.secrets]?.data {
            do {
                result.secrets = try VeilSecrets.parse(data)
            } catch let failure as VeilSecrets.Failure {
                problem(secretsFile, failure.description)
            } catch {
                problem(secretsFile, "cannot be read as a secrets file")
            }
        }
        // A secrets file without the keys the server signs with is useless to a new frontend,
        // however well-formed (`{"vail": {...}}` reads as a legacy file of one group "vail").
        var secretsIncomplete = false
        if let secrets = result.secrets, let missing = secrets.missing(FrontendValidation.requiredCredentials,
                                                                         purpose: "a new frontend needs them") {
            problem(secretsFile, missing)
            secretsIncomplete = true
        }
        let chefServer = secretsIncomplete ? [:] : result.secrets?.credentials["chef-server"] ?? [:]

        for file in flavor.files where absent.contains(file.role) {
            switch file.requirement {
            case .required:
                problem(file, "missing (required in a \(flavor.rawValue) frontend bundle)")
            case let .unlessInSecrets(credential):
                if result.secrets != nil && !secretsIncomplete && chefServer[credential] == nil {
                    problem(file, "missing, and \(secretsName) has no chef-server.\(credential) either")
                }
            case .optional:
                break
            }
        }

        if let data = files[.darkLaunch]?.data {
            do {
                _ = try JSONSerialization.jsonObject(with: data)
            } catch {
                problem(flavor.file(.darkLaunch), "not valid JSON (\(JSONProblem.describe(error)))")
            }
        }

        if let data = files[.migrationLevel]?.data {
            do {
                result.migrationLevel = try MigrationLevel.parse(data)
            } catch let failure as VeilSecrets.Failure {
                problem(flavor.file(.migrationLevel), failure.reason)
            } catch {
                problem(flavor.file(.migrationLevel), "cannot be read")
            }
        }

        // pivotal.pem and chef-server.superuser_key: one key.
        var pivotal: (name: String, fingerprint: String)?
        if let data = files[.pivotalKey]?.data {
            let file = flavor.file(.pivotalKey)
            if let fingerprint = privateKeyFingerprint(data) {
                pivotal = (file.name, fingerprint)
                result.fingerprints[file.name] = fingerprint
            } else {
                problem(file, "not a PEM private key")
            }
        }
        if let pem = chefServer["superuser_key"] {
            if let fingerprint = privateKeyFingerprint(Data(pem.utf8)) {
                result.fingerprints["chef-server.superuser_key"] = fingerprint
                if let pivotal, pivotal.fingerprint != fingerprint {
                    problem(flavor.file(.pivotalKey), "not the key in \(secretsName) chef-server.superuser_key, so the server would answer 401 \"Invalid signature for user or client 'pivotal'\" (pivotal.pem public key SHA-256 \(pivotal.fingerprint); superuser_key SHA-256 \(fingerprint))")
                }
            } else {
                problem(secretsFile, "chef-server.superuser_key: not a PEM private key")
            }
        }

        // webui_pub.pem, webui_priv.pem, chef-server.webui_key and webui_pub_key: one key pair.
        var webui: [(name: String, fingerprint: String)] = []
        if let data = files[.webuiPublic]?.data {
            let file = flavor.file(.webuiPublic)
            if String(decoding: data, as: UTF8.self).contains("PRIVATE KEY-----") {
                problem(file, "holds a private key, but is the public half (mode 0644, readable by everyone)")
            } else if let fingerprint = publicKeyFingerprint(data) {
                webui.append((file.name, fingerprint))
            } else {
                problem(file, "not a PEM public key")
            }
        }
        if let data = files[.webuiPrivate]?.data {
            let file = flavor.file(.webuiPrivate)
            if let fingerprint = privateKeyFingerprint(data) {
                webui.append((file.name, fingerprint))
            } else {
                problem(file, "not a PEM private key")
            }
        }
        if let pem = chefServer["webui_key"] {
            if let fingerprint = privateKeyFingerprint(Data(pem.utf8)) {
                webui.append(("chef-server.webui_key", fingerprint))
            } else {
                problem(secretsFile, "chef-server.webui_key: not a PEM private key")
            }
        }
        if let pem = chefServer["webui_pub_key"] {
            if let fingerprint = publicKeyFingerprint(Data(pem.utf8)) {
                webui.append(("chef-server.webui_pub_key", fingerprint))
            } else {
                problem(secretsFile, "chef-server.webui_pub_key: not a PEM public key")
            }
        }
        for entry in webui { result.fingerprints[entry.name] = entry.fingerprint }
        // One line naming every source that disagrees with webui_pub.pem (or the first source),
        // and the fingerprints grouped by key.
        if let reference = webui.first {
            let others = webui.filter { $0.fingerprint != reference.fingerprint }
            if !others.isEmpty {
                let file = reference.name == flavor.file(.webuiPublic).name ? flavor.file(.webuiPublic)
                    : reference.name == flavor.file(.webuiPrivate).name ? flavor.file(.webuiPrivate) : secretsFile
                var groups: [(fingerprint: String, names: [String])] = []
                for entry in webui {
                    if let index = groups.firstIndex(where: { $0.fingerprint == entry.fingerprint }) {
                        groups[index].names.append(entry.name)
                    } else {
                        groups.append((entry.fingerprint, [entry.name]))
                    }
                }
                let fileNames = others.map(\.name).filter { !$0.hasPrefix("chef-server.") }
                let credentialNames = others.map(\.name).filter { $0.hasPrefix("chef-server.") }
                let names = fileNames + (credentialNames.isEmpty ? [] : ["\(credentialNames.joined(separator: ", ")) in \(secretsName)"])
                let listing = groups.map { "\($0.names.joined(separator: ", ")) SHA-256 \($0.fingerprint)" }.joined(separator: "; ")
                let subject = reference.name == file.name ? "" : "\(reference.name) is "
                problem(file, "\(subject)not the public half of \(names.joined(separator: " nor of ")) (\(listing))")
            }
        }
        return result
    }

    /// What the secrets file must hold (SPEC §5): the chef-server keys.
    public static let requiredCredentials = [(group: "chef-server", names: ["superuser_key", "webui_key", "webui_pub_key"])]

    static func privateKeyFingerprint(_ pem: Data) -> String? {
        guard let key = try? PrivateKey(pem: pem) else { return nil }
        return try? key.publicKeyFingerprint()
    }

    static func publicKeyFingerprint(_ pem: Data) -> String? {
        guard let key = try? PublicKey(pem: pem) else { return nil }
        return try? key.fingerprint()
    }
}
