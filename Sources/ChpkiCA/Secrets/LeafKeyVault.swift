import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Leaf private keys at rest (SPEC §8): each key is sealed with AES-256-GCM under one random 32-byte
/// data key, with the certificate's serial as associated data; the data key itself is sealed under
/// a key derived from the CA passphrase with scrypt. The wrapped data key and the scrypt parameters
/// live in `ca.db`'s meta table (`LeafKeyWrap`), so a copy of `ca.db` alone opens no key.
public final class LeafKeyVault: Sendable {
    private let dataKey: SecretBytes

    private init(dataKey: SecretBytes) {
        self.dataKey = dataKey
    }

    /// What is stored: everything needed to unwrap the data key, given the passphrase.
    public struct Wrap: Codable, Sendable, Equatable {
        public var version: Int
        public var kdf: String
        public var scrypt: Scrypt.Parameters
        /// base64
        public var salt: String
        /// base64 of the AES-256-GCM box holding the data key.
        public var wrappedKey: String

        enum CodingKeys: String, CodingKey {
            case version, kdf, scrypt, salt
            case wrappedKey = "wrapped_key"
        }
    }

    static let wrapContext = Array("chpki leaf-key data key v1".utf8)
    static let keyContext = Array("chpki leaf key v1 serial ".utf8)
    static let issuingKeyContext = Array("chpki issuing key v1 serial ".utf8)

    /// A new data key, wrapped under `passphrase`.
    public static func create(passphrase: Passphrase, parameters: Scrypt.Parameters = .default) throws -> (LeafKeyVault, Wrap) {
        let vault = LeafKeyVault(dataKey: SecretBytes(try randomBytes(AES256GCM.keyLength)))
        return (vault, try vault.wrap(under: passphrase, parameters: parameters))
    }

    /// This vault's data key wrapped under `passphrase` (a fresh salt): `passphrase change` stores
    /// it in place of the old wrap, and every sealed leaf key opens as before.
    public func wrap(under passphrase: Passphrase, parameters: Scrypt.Parameters = .default) throws -> Wrap {
        let salt = try randomBytes(16)
        let wrappingKey = try Scrypt.derive(passphrase: passphrase, salt: salt, parameters: parameters, length: AES256GCM.keyLength)
        let box = try dataKey.withBytes { try AES256GCM.seal($0, key: wrappingKey, associatedData: Self.wrapContext) }
        let wrap = Wrap(version: 1, kdf: "scrypt", scrypt: parameters, salt: Data(salt).base64EncodedString(),
                        wrappedKey: box.base64EncodedString())
        return wrap
    }

    /// Unwraps the data key; a wrong passphrase is refused naming where it came from.
    public static func open(_ wrap: Wrap, passphrase: Passphrase, source: String) throws -> LeafKeyVault {
        guard wrap.version == 1, wrap.kdf == "scrypt", wrap.scrypt.isAcceptable,
              let salt = Data(base64Encoded: wrap.salt), let box = Data(base64Encoded: wrap.wrappedKey) else {
            throw ChpkiError.input(.caCorrupt, file: CADatabase.fileName, field: "meta.leaf_key_wrap", "unreadable or unsupported key-wrapping record")
        }
        let wrappingKey = try Scrypt.derive(passphrase: passphrase, salt: [UInt8](salt), parameters: wrap.scrypt, length: AES256GCM.keyLength)
        do {
            return LeafKeyVault(dataKey: try AES256GCM.open(box, key: wrappingKey, associatedData: wrapContext))
        } catch is AES256GCM.AuthenticationFailure {
            throw ChpkiError.input(.passphraseWrong, file: nil, field: source, "the passphrase does not open the leaf keys in \(CADatabase.fileName)")
        }
    }

    public func seal(_ keyPEM: SecretBytes, serial: SerialNumber) throws -> Data {
        try keyPEM.withBytes { try AES256GCM.seal($0, key: dataKey, associatedData: Self.keyContext + serial.bytes) }
    }

    /// An issuing intermediate's key, sealed beside its PKCS#8 copy (`AuthorityKey.sealedCopy`).
    func sealIssuingKey(_ keyPEM: SecretBytes, serial: SerialNumber) throws -> Data {
        try keyPEM.withBytes { try AES256GCM.seal($0, key: dataKey, associatedData: Self.issuingKeyContext + serial.bytes) }
    }

    /// Opens what `sealIssuingKey` sealed; nil when it does not authenticate (the caller then opens the PKCS#8 copy).
    func openIssuingKey(_ box: Data, serial: SerialNumber) -> SecretBytes? {
        try? AES256GCM.open(box, key: dataKey, associatedData: Self.issuingKeyContext + serial.bytes)
    }

    public func open(_ box: Data, serial: SerialNumber) throws -> SecretBytes {
        do {
            return try AES256GCM.open(box, key: dataKey, associatedData: Self.keyContext + serial.bytes)
        } catch is AES256GCM.AuthenticationFailure {
            throw ChpkiError.input(.caCorrupt, file: CADatabase.fileName, field: serial.hex, "the sealed private key does not authenticate (altered or moved)")
        }
    }
}
