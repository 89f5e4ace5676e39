import ChpkiOpenSSL
import Foundation

/// The Infra Server secrets file (`private-cinc-secrets.json` / `private-chef-secrets.json`) as the
/// `veil` library writes it, read into `group -> name -> value`. Three shapes exist:
///
/// - v2 (current): `{"veil": {"type": "Veil::CredentialCollection::ChefSecretsFile", "version": 2,
///   "hasher": {...}, "cipher": {"type": "Veil::Cipher::V2", "key": <base64 32 bytes>, "iv": <base64
///   16 bytes>}, "credentials": <base64 of AES-256-CBC (PKCS#7) of the credentials JSON>}}`; the
///   credentials JSON is `{group: {name: {"type": "Veil::Credential", "name", "group", "value",
///   "version", "length", "frozen"}}}`.
/// - veil without a cipher (older veil): the same, with `credentials` an object in clear (and the
///   flat form merged beside `veil`).
/// - legacy flat: `{group: {name: value}}`.
///
/// Values are held only to compare and check keys; nothing here prints one.
public struct VeilSecrets: Sendable {
    public enum Format: String, Sendable {
        case v2 = "veil v2 (AES-256-CBC)"
        case veilPlain = "veil (unencrypted credentials)"
        case legacy = "legacy flat"
    }

    /// Why a secrets file could not be read: `field` locates the problem inside the file; never a value.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var field: String?
        public var reason: String
        public var description: String { field.map { "\($0): \(reason)" } ?? reason }
    }

    public var format: Format
    /// group -> name -> value. Credentials outside any group are under the group "".
    public var credentials: [String: [String: String]]
    /// The veil hasher settings (canonical JSON), which derive new credentials; nil in the legacy form.
    public var hasher: String?
    /// `group.name` of every credential whose value was not a JSON string.
    public var nonStringValues: Set<String> = []

    public static let collectionType = "Veil::CredentialCollection::ChefSecretsFile"
    public static let credentialType = "Veil::Credential"

    public func value(_ group: String, _ name: String) -> String? {
        credentials[group]?[name]
    }

    /// Every credential as `group.name`, sorted.
    public var names: [String] {
        credentials.flatMap { group, entries in entries.keys.map { group.isEmpty ? $0 : "\(group).\($0)" } }.sorted()
    }

    public struct Pair: Hashable, Sendable {
        public var group: String
        public var name: String
    }

    /// Every (group, name).
    public var pairs: [Pair] {
        credentials.flatMap { group, entries in entries.keys.map { Pair(group: group, name: $0) } }
    }

    public var count: Int { credentials.values.reduce(0) { $0 + $1.count } }

    public static func parse(_ data: Data) throws -> VeilSecrets {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw Failure(field: nil, reason: "not valid JSON (\(JSONProblem.describe(error)))")
        }
        guard let top = object as? [String: Any] else {
            throw Failure(field: nil, reason: "not a JSON object")
        }
        guard let veil = top["veil"] else {
            var nonString: Set<String> = []
            return VeilSecrets(format: .legacy, credentials: try flat(top, &nonString), hasher: nil, nonStringValues: nonString)
        }
        guard let collection = veil as? [String: Any] else { throw Failure(field: "veil", reason: "not an object") }
        guard collection["type"] as? String == collectionType else {
            throw Failure(field: "veil.type", reason: "not \(collectionType)")
        }
        // veil 1 kept the credentials in clear, veil 2 encrypts them (Veil::Cipher::V2); a
        // version chpki does not know may mean anything, so it is refused, not guessed at.
        guard let version = collection["version"] else { throw Failure(field: "veil.version", reason: "missing") }
        guard let number = exactInteger(version), number == 1 || number == 2 else {
            throw Failure(field: "veil.version", reason: "\((try? canonicalJSON(version)) ?? "this value") is not a veil version chpki reads (1: credentials in clear, 2: Veil::Cipher::V2)")
        }
        let hasher = try collection["hasher"].map { try canonicalJSON($0) }
        switch collection["credentials"] {
        case is String where number == 1, is [String: Any] where number == 2:
            throw Failure(field: "veil.credentials", reason: number == 1 ? "a string, but veil version 1 keeps the credentials as an object" : "an object, but veil version 2 encrypts the credentials (a base64 string)")
        case let ciphertext as String:
            let plaintext = try decrypt(ciphertext, cipher: collection["cipher"])
            let decoded: Any
            do {
                decoded = try JSONSerialization.jsonObject(with: plaintext)
            } catch {
                throw Failure(field: "veil.credentials", reason: "decrypted, but not JSON")
            }
            guard let groups = decoded as? [String: Any] else {
                throw Failure(field: "veil.credentials", reason: "decrypted, but not a JSON object")
            }
            var nonString: Set<String> = []
            return VeilSecrets(format: .v2, credentials: try expanded(groups, &nonString), hasher: hasher, nonStringValues: nonString)
        case let groups as [String: Any]:
            var nonString: Set<String> = []
            return VeilSecrets(format: .veilPlain, credentials: try expanded(groups, &nonString), hasher: hasher, nonStringValues: nonString)
        case nil:
            return VeilSecrets(format: .veilPlain, credentials: [:], hasher: hasher)
        default:
            throw Failure(field: "veil.credentials", reason: "neither ciphertext (a base64 string) nor an object")
        }
    }

    private static func decrypt(_ ciphertext: String, cipher: Any?) throws -> Data {
        guard let cipher = cipher as? [String: Any] else {
            throw Failure(field: "veil.cipher", reason: "missing, but the credentials are encrypted")
        }
        let type = cipher["type"] as? String
        guard type == "Veil::Cipher::V2" || type == "V2" else {
            throw Failure(field: "veil.cipher.type", reason: "'\(type ?? "none")' is not Veil::Cipher::V2")
        }
        let key = try base64Field(cipher["key"], field: "veil.cipher.key", length: AES256CBC.keyLength)
        let iv = try base64Field(cipher["iv"], field: "veil.cipher.iv", length: AES256CBC.ivLength)
        guard let bytes = Data(base64Encoded: ciphertext, options: .ignoreUnknownCharacters), !bytes.isEmpty else {
            throw Failure(field: "veil.credentials", reason: "not base64")
        }
        do {
            return try AES256CBC.decrypt(bytes, key: key, iv: iv)
        } catch let error as OpenSSLError {
            throw Failure(field: "veil.credentials", reason: "cannot be decrypted with veil.cipher (\(error.reasons.first ?? "bad decrypt"))")
        }
    }

    private static func base64Field(_ value: Any?, field: String, length: Int) throws -> [UInt8] {
        guard let text = value as? String, let bytes = Data(base64Encoded: text, options: .ignoreUnknownCharacters) else {
            throw Failure(field: field, reason: "missing or not base64")
        }
        guard bytes.count == length else {
            throw Failure(field: field, reason: "is \(bytes.count) bytes, expected \(length)")
        }
        return [UInt8](bytes)
    }

    /// `{group: {name: credential}}` where a credential is a `Veil::Credential` object; a top-level
    /// `Veil::Credential` is a credential without a group.
    private static func expanded(_ groups: [String: Any], _ nonString: inout Set<String>) throws -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for (groupName, entry) in groups {
            guard let entry = entry as? [String: Any] else {
                throw Failure(field: "credentials.\(groupName)", reason: "not an object")
            }
            if entry["type"] as? String == credentialType {
                out["", default: [:]][groupName] = try credentialValue(entry, field: groupName, &nonString)
                continue
            }
            var group: [String: String] = [:]
            for (name, credential) in entry {
                guard let credential = credential as? [String: Any] else {
                    throw Failure(field: "credentials.\(groupName).\(name)", reason: "not a Veil::Credential object")
                }
                group[name] = try credentialValue(credential, field: "\(groupName).\(name)", &nonString)
            }
            out[groupName] = group
        }
        return out
    }

    private static func credentialValue(_ credential: [String: Any], field: String, _ nonString: inout Set<String>) throws -> String {
        guard let value = credential["value"] else {
            throw Failure(field: "credentials.\(field)", reason: "has no value")
        }
        if !(value is String) { nonString.insert(field) }
        return try scalarText(value, field: "credentials.\(field).value")
    }

    /// The legacy `{group: {name: value}}`.
    private static func flat(_ top: [String: Any], _ nonString: inout Set<String>) throws -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for (groupName, entry) in top {
            guard let entry = entry as? [String: Any] else {
                throw Failure(field: groupName, reason: "not an object of credentials (neither veil nor the legacy {group: {name: value}} form)")
            }
            var group: [String: String] = [:]
            for (name, value) in entry {
                if !(value is String) { nonString.insert("\(groupName).\(name)") }
                group[name] = try scalarText(value, field: "\(groupName).\(name)")
            }
            out[groupName] = group
        }
        return out
    }

    /// Why the credentials lack what a consumer needs (`required`: group -> names, each a
    /// non-empty JSON string), as one line, or nil. Never quotes a value.
    public func missing(_ required: [(group: String, names: [String])], purpose: String) -> String? {
        var absent: [String] = []
        var wrong: [String] = []
        for (group, names) in required {
            guard let entries = credentials[group] else {
                return "no \(group) group (\(names.joined(separator: ", "))): \(purpose)"
            }
            for name in names {
                if nonStringValues.contains("\(group).\(name)") { wrong.append("\(group).\(name)") }
                else if entries[name]?.isEmpty ?? true { absent.append("\(group).\(name)") }
            }
        }
        if !absent.isEmpty { return "\(absent.joined(separator: ", ")) missing or empty: \(purpose)" }
        if !wrong.isEmpty { return "\(wrong.joined(separator: ", ")): not a string" }
        return nil
    }

    /// A JSON integer (not a boolean, not a fraction).
    static func exactInteger(_ value: Any) -> Int? {
        guard let number = value as? NSNumber, !(value is String) else { return nil }
        let type = String(cString: number.objCType)
        guard type != "c", type != "d", type != "f" else { return nil }
        return number.intValue
    }

    private static func scalarText(_ value: Any, field: String) throws -> String {
        if let text = value as? String { return text }
        return try canonicalJSON(value)
    }

    static func canonicalJSON(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
        return String(decoding: data, as: UTF8.self)
    }
}

/// A JSON parse error in a few words, without the input (which may be a secret): where, never what.
enum JSONProblem {
    static func describe(_ error: Error) -> String {
        var texts = ["\(error)"]
        if let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String { texts.append(detail) }
        for text in texts {
            if let range = text.range(of: "line \\d+, column \\d+", options: .regularExpression) {
                return "syntax error at \(text[range])"
            }
        }
        return "syntax error"
    }
}
