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
