import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// `chpki passphrase change` on an opened CA (SPEC §6 "Two secrets"): every CA key under the
/// changed secret is opened with the old passphrase and wrapped under the new one, and, for the
/// operations passphrase, the leaf-key data key too (the sealed leaf keys themselves stay as they
/// are); one transaction, then the files of `ca/` are rewritten from it.
extension CASession {
    public struct PassphraseChange: Sendable {
        /// The secret that was changed.
        public var which: CASecret
        /// Serials of the CA keys now under the new passphrase.
        public var rewrapped: [SerialNumber]
        public var leafKeyWrapChanged: Bool
        /// True when a one-passphrase CA got a root passphrase of its own (migration).
        public var split: Bool
        public var rootKeyApart: Bool
    }

    /// Re-wraps the keys under `which` with the passphrase `newPassphrase` gives (asked only after
    /// the old one has opened every key).
    public func changePassphrase(_ which: CASecret, to newPassphrase: () throws -> Passphrase) throws -> PassphraseChange {
        try requireExclusive()
        let databaseFile = directory.file(CADatabase.fileName)
        guard try keysEncrypted() else {
            throw ChpkiError.input(.passphraseNotApplicable, file: databaseFile, field: "--which",
                                   "this CA was made with --no-passphrase: its keys are stored in clear, there is no passphrase to change")
        }
        let wasApart = try rootKeyApart()
        if which == .root && issuing.serial == root.serial {
            throw ChpkiError.input(.passphraseNotApplicable, file: databaseFile, field: "--which root",
                                   "the root signs the leaves of this CA (no intermediate): its key is an issuing key and stays under the operations passphrase")
        }
        // The keys this change re-wraps: a one-passphrase CA's root goes with the operations
        // passphrase (one secret stays one), and with --which root it gets its own (the split).
        let affected = authorities.filter { authority in
            switch which {
            case .root: return authority.kind == .root
            case .operations: return AuthorityKey.secret(of: authority.kind, rootApart: wasApart) == .operations
            }
        }
        // Old passphrase first: every key must open with it before anything is asked or changed.
        var opened: [(IssuedCertificate, PrivateKey)] = []
        for authority in affected {
            guard let pem = try database.authorityKeyPEM(serial: authority.serial) else {
                if authority.serial == root.serial {
                    throw ChpkiError.input(.passphraseNotApplicable, file: directory.file(CADirectory.rootKey), field: "--which",
                                           "the root key is not in \(CADatabase.fileName), so it cannot be re-wrapped here")
                }
                continue  // a retired CA whose key was never stored
            }
            let name = directory.file(CADatabase.fileName) + " (CA key \(authority.serial.hex))"
            let key = try AuthorityKey.open(pem, certificate: try authority.certificate(), name: name,
                                            source: try passphraseField(for: authority.kind)) {
                try passphrase(for: authority.kind, purpose: "passphrase change --which \(which.rawValue)")
            }
            opened.append((authority, key))
        }
        let vault = which == .operations ? try unlockVault() : nil
        if which == .operations { _ = try unlockSigner() }  // a first-release CA seals its clear leaf keys first

        let new = try newPassphrase()
        // The new root passphrase must not be the operations one, when this run knows it.
        if which == .root && !wasApart, new == (try passphrase()) {
            throw ChpkiError.input(.passphraseReused, file: nil, field: "new passphrase",
                                   "the new root passphrase is the operations passphrase: choose another, so that the weekly renewal never holds the root")
        }
        var keys: [SerialNumber: Data] = [:]
        for (authority, key) in opened { keys[authority.serial] = try AuthorityKey.protect(key, passphrase: new) }
        let wrap = try vault.map { try $0.wrap(under: new) }
        let apart = which == .root ? true : wasApart
        try database.rewrapKeys(keys, leafKeyWrap: wrap, rootKeyApart: apart)
        try publish()
        return PassphraseChange(which: which, rewrapped: opened.map(\.0.serial), leafKeyWrapChanged: wrap != nil,
                                split: apart && !wasApart, rootKeyApart: apart)
    }
}
