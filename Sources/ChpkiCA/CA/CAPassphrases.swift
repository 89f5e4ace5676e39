import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// The CA's two secrets for one session (SPEC §6 "Two secrets"): where each comes from, each asked
/// at most once per run, and which one opens a CA key of a given kind. A CA made with one
/// passphrase answers the root's question with the operations passphrase.
final class CAPassphrases {
    private let operationsSource: PassphraseSource
    private let rootSource: PassphraseSource
    /// Read from ca.db when first needed: whether the root keys are under their own passphrase.
    private let rootKeyApart: () throws -> Bool
    private var operations: Passphrase?
    private var root: Passphrase?

    init(operations: PassphraseSource?, root: PassphraseSource?, rootKeyApart: @escaping () throws -> Bool) {
        operationsSource = operations ?? PassphraseSource(file: nil)
        rootSource = root ?? .root(file: nil)
        self.rootKeyApart = rootKeyApart
    }

    /// Where the operations passphrase comes from, for messages.
    var operationsField: String { operationsSource.field }

    /// The operations passphrase (issuing keys, leaf-key data key).
    func operationsPassphrase() throws -> Passphrase {
        if let operations { return operations }
        let value = try operationsSource.existingPassphrase(purpose: "the CA key (operations)")
        operations = value
        return value
    }

    /// The passphrase that opens the root keys: the root passphrase, or the operations one for a
    /// CA that has only one. `purpose` says why, when it cannot be asked for.
    func rootPassphrase(purpose: String) throws -> Passphrase {
        guard try rootKeyApart() else { return try operationsPassphrase() }
        if let root { return root }
        guard rootSource.isGiven || Terminal.standardInputIsATerminal else {
            throw ChpkiError.input(.passphraseRootNeeded, file: nil, field: "root passphrase",
                                   "\(purpose) needs the root passphrase, which opens \(CADirectory.rootKey): give it with \(rootSource.alternatives); nothing was changed")
        }
        let value = try rootSource.existingPassphrase(purpose: "the root key")
        root = value
        return value
    }

    /// The passphrase that wraps (and opens) a CA key of `kind`.
    package func passphrase(for kind: CertificateKind, purpose: String) throws -> Passphrase {
        AuthorityKey.secret(of: kind, rootApart: try rootKeyApart()) == .root ? try rootPassphrase(purpose: purpose) : try operationsPassphrase()
    }

    /// Where the passphrase for a key of `kind` comes from, for messages.
    func field(for kind: CertificateKind) throws -> String {
        AuthorityKey.secret(of: kind, rootApart: try rootKeyApart()) == .root ? rootSource.field : operationsSource.field
    }
}
