import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// The two secrets of a CA (SPEC §6): the root passphrase wraps root keys, the operations
/// passphrase every issuing key (intermediates, the leaf-key data key). A CA made with one
/// passphrase (or whose root signs leaves, `--no-intermediate`) wraps its root under the operations one.
public enum CASecret: String, Sendable, CaseIterable {
    case root, operations
}

/// A CA key as stored: PKCS#8 PEM, encrypted (PBES2) unless the CA was made with `--no-passphrase`.
/// The one place that tells the two apart, and that says which secret wraps which key.
enum AuthorityKey {
    /// The secret that wraps a key of `kind`, given whether the CA keeps its root apart.
    package static func secret(of kind: CertificateKind, rootApart: Bool) -> CASecret {
        kind == .root && rootApart ? .root : .operations
    }

    static func isEncrypted(_ pem: Data) -> Bool {
        (try? PEMBlock.all(in: pem).first?.label) == "ENCRYPTED PRIVATE KEY"
    }

    /// The PEM to store for a new CA key: encrypted with `passphrase`, or in clear when there is none.
    static func protect(_ key: PrivateKey, passphrase: Passphrase?, protection: KeyProtection = .scryptDefault) throws -> Data {
        guard let passphrase else { return try key.pkcs8PEM() }
        return try key.encryptedPKCS8PEM(passphrase: passphrase, protection: protection)
    }

    /// An issuing intermediate's key sealed under the leaf-key data key, stored beside its PKCS#8
    /// copy: both are under the operations passphrase (SPEC §6), but a run that opens the data key
    /// anyway (every `issue`) then needs one scrypt, not two. The PKCS#8 copy stays what
    /// `intermediate.key`, `passphrase change` and OpenSSL use. nil without a vault (`--no-passphrase`).
    static func sealedCopy(of key: PrivateKey, serial: SerialNumber, vault: LeafKeyVault?) throws -> Data? {
        guard let vault else { return nil }
        var pem = try key.pkcs8PEM()
        return try vault.sealIssuingKey(SecretBytes(consuming: &pem), serial: serial)
    }

    /// Opens a sealed copy and checks it belongs to `certificate`; nil when it does not open or
    /// match, and the PKCS#8 copy is used (and reports what is wrong).
    static func openSealedCopy(_ box: Data, certificate: Certificate, vault: LeafKeyVault) -> PrivateKey? {
        guard let pem = vault.openIssuingKey(box, serial: certificate.serial), let key = try? PrivateKey(pem: pem),
              key.matches(certificate) else { return nil }
        return key
    }

    /// Opens a stored CA key and checks it belongs to `certificate`; `name` is the file the operator knows it by.
    /// `source` names where the passphrase came from when it does not open the key.
    static func open(_ pem: Data, certificate: Certificate, name: String, source: String = "passphrase",
                     passphrase: () throws -> Passphrase) throws -> PrivateKey {
        let encrypted = isEncrypted(pem)
        let key: PrivateKey
        do {
            key = try PrivateKey(pem: pem, passphrase: encrypted ? try passphrase() : nil)
        } catch let error as OpenSSLError {
            throw ChpkiError.input(error.isBadDecrypt || encrypted ? .passphraseWrong : .caKeyUnavailable, file: name, field: source, error.isBadDecrypt || encrypted
                ? "the passphrase does not open the CA key" : "cannot read the CA key: \(error)")
        }
        guard key.matches(certificate) else {
            throw ChpkiError.input(.caKeyMismatch, file: name, field: nil, "this key does not belong to \(Path.name(of: name).replacingOccurrences(of: ".key", with: ".pem"))")
        }
        return key
    }
}
