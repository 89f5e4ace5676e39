import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory
import Synchronization

/// The keys of an opened CA (CASession): its passphrases, asked once per run (CAPassphrases), and
/// what unlocking them gives — the issuing key's signer, the root's, the leaf-key vault — and the
/// leaf keys read through it. Unlocking is an action: it may prompt, runs a KDF, and for a
/// first-release CA seals its clear leaf keys.
struct UnlockedKeys {
    /// The issuing CA's signer, once unlocked (growth replaces it with the new intermediate's).
    var signer: Signer?
    /// Whether the vault below was looked for: it stays nil for a CA whose leaf keys are in clear.
    var vaultLoaded = false
    var vault: LeafKeyVault?
    /// The operations keys being opened on another thread (`startUnlockingOperations`).
    var pending: PendingUnlock?
}

/// What `startUnlockingOperations` opens on other threads while the command plans: the data key,
/// and the issuing key (from its sealed copy once the data key is open, else from its PKCS#8).
/// Only values cross threads; the session takes the results in `collectPendingUnlock`.
final class PendingUnlock: Sendable {
    let group = DispatchGroup()
    let vault = Mutex<LeafKeyVault?>(nil)
    let signingKey = Mutex<PrivateKey?>(nil)
}

extension CASession {
    // MARK: - Passphrases

    /// The operations passphrase (issuing keys, leaf-key data key), asked once per run.
    public func passphrase() throws -> Passphrase { try passphrases.operationsPassphrase() }

    /// Whether the root keys are under their own passphrase (SPEC §6); false for a CA made with one.
    public func rootKeyApart() throws -> Bool { try database.rootKeyApart() }

    /// The passphrase that opens the root keys, asked once per run: the root passphrase, or the
    /// operations one for a CA that has only one. `purpose` says why, when it cannot be asked for.
    public func rootPassphrase(purpose: String = "this command") throws -> Passphrase {
        try passphrases.rootPassphrase(purpose: purpose)
    }

    /// The passphrase that wraps (and opens) a CA key of `kind`.
    package func passphrase(for kind: CertificateKind, purpose: String = "this command") throws -> Passphrase {
        try passphrases.passphrase(for: kind, purpose: purpose)
    }

    /// Where the passphrase for a key of `kind` comes from, for messages.
    func passphraseField(for kind: CertificateKind) throws -> String { try passphrases.field(for: kind) }

    /// The passphrase to encrypt a new CA key of `kind` with: nil for a `--no-passphrase` CA.
    public func newKeyPassphrase(for kind: CertificateKind) throws -> Passphrase? {
        try keysEncrypted() ? try passphrase(for: kind) : nil
    }

    /// Whether the CA keys are encrypted (false for `--no-passphrase`).
    public func keysEncrypted() throws -> Bool {
        guard let pem = try issuingKeyPEM() else { return true }
        return AuthorityKey.isEncrypted(pem)
    }

    // MARK: - Unlocking

    /// Opens the issuing key and the leaf-key data key now, so that a missing or wrong operations
    /// passphrase is refused before the command does anything, even when nothing is due.
    public func unlockOperations() throws {
        if unlocked.pending == nil { try startUnlockingOperations() }
        _ = try unlockSigner()
        _ = try unlockVault()
    }

    /// Starts opening the operations keys on other threads and returns at once, so that their KDF
    /// (scrypt, about 0.25 s of one core) overlaps what the command does next (`issue` plans);
    /// `unlockOperations` (or any unlock) then collects them. It asks for the passphrase now.
    /// The data key's KDF also opens the issuing key's sealed copy; a CA made before those copies
    /// runs the issuing key's own KDF beside it. Nothing fails here: a wrong passphrase, or a copy
    /// that does not open, is reported (or bypassed) by the plain unlocking the collection falls back to.
    public func startUnlockingOperations() throws {
        guard unlocked.pending == nil, unlocked.signer == nil, !unlocked.vaultLoaded,
              AuthorityKey.secret(of: issuing.kind, rootApart: try rootKeyApart()) == .operations,
              let wrap = try database.publishedState().leafKeyWrap else { return }
        let passphrase = try passphrase()
        let source = passphrases.operationsField
        let certificate = issuingCertificate
        let sealedKey = try database.authoritySealedKey(serial: issuing.serial)
        let pending = PendingUnlock()
        DispatchQueue.global(qos: .userInitiated).async(group: pending.group) {
            guard let vault = try? LeafKeyVault.open(wrap, passphrase: passphrase, source: source) else { return }
            pending.vault.withLock { $0 = vault }
            if let sealedKey, let key = AuthorityKey.openSealedCopy(sealedKey, certificate: certificate, vault: vault) {
                pending.signingKey.withLock { $0 = key }
            }
        }
        if sealedKey == nil, let pem = try issuingKeyPEM() {
            let name = directory.file(issuingKeyFileName)
            DispatchQueue.global(qos: .userInitiated).async(group: pending.group) {
                // Its refusal is not kept: unlockSigner opens the key again and reports it.
                let key = try? AuthorityKey.open(pem, certificate: certificate, name: name, passphrase: { passphrase })
                pending.signingKey.withLock { $0 = key }
            }
        }
        unlocked.pending = pending
    }

    /// Waits for `startUnlockingOperations`' threads and keeps what they opened.
    private func collectPendingUnlock() {
        guard let pending = unlocked.pending else { return }
        unlocked.pending = nil
        pending.group.wait()
        if !unlocked.vaultLoaded, let vault = pending.vault.withLock({ $0 }) {
            unlocked.vault = vault
            unlocked.vaultLoaded = true
        }
        if unlocked.signer == nil, let key = pending.signingKey.withLock({ $0 }) {
            unlocked.signer = Signer(certificate: issuingCertificate, key: key)
        }
    }

    /// The file the operator knows the issuing key by.
    private var issuingKeyFileName: String { issuing.kind == .root ? CADirectory.rootKey : CADirectory.intermediateKey }

    func issuingKeyPEM() throws -> Data? {
        try keyPEM(of: issuing, fileName: issuingKeyFileName)
    }

    /// A CA key from the database; a first-release CA whose key was never adopted is read from its file.
    private func keyPEM(of authority: IssuedCertificate, fileName: String) throws -> Data? {
        if let pem = try database.authorityKeyPEM(serial: authority.serial) { return pem }
        return RegularFile.contents(directory.file(fileName), limit: ReadLimits.caFile)
    }

    /// Unlocking is an action, not a getter: it asks for the passphrase (the prompt, once per run),
    /// runs its KDF, and may change the CA. `unlockSigner` decrypts the issuing key (the one CA-key
    /// KDF of a run), checks it belongs to the issuing certificate, and caches it. The first time a
    /// first-release CA's passphrase is proven this way, its clear leaf keys are sealed (upgrading
    /// the lock to exclusive for that one transaction): the earliest moment chpki can, in any command.
    public func unlockSigner() throws -> Signer {
        collectPendingUnlock()
        if let signer = unlocked.signer { return signer }
        let name = directory.file(issuingKeyFileName)
        guard let pem = try issuingKeyPEM() else { throw ChpkiError.input(.caKeyUnavailable, file: name, field: nil, "cannot read the CA key") }
        let key = try AuthorityKey.open(pem, certificate: issuingCertificate, name: name, source: try passphraseField(for: issuing.kind)) {
            try passphrase(for: issuing.kind)
        }
        let signer = Signer(certificate: issuingCertificate, key: key)
        unlocked.signer = signer
        try sealLegacyLeafKeys()
        return signer
    }

    /// The root's own signer, for what only the root signs (a rotation's cross-certificate, a new
    /// intermediate): asks for the root passphrase; `purpose` names the command when it is missing.
    public func unlockRootSigner(purpose: String = "this command") throws -> Signer {
        if issuing.serial == root.serial { return try unlockSigner() }
        let rootRecord = authorities.first { $0.serial == root.serial }!
        let name = directory.file(CADirectory.rootKey)
        guard let pem = try keyPEM(of: rootRecord, fileName: CADirectory.rootKey) else {
            throw ChpkiError.input(.caKeyUnavailable, file: name, field: nil, "cannot read the root key (is root.key offline?)")
        }
        let key = try AuthorityKey.open(pem, certificate: root, name: name, source: try passphraseField(for: .root)) {
            try rootPassphrase(purpose: purpose)
        }
        return Signer(certificate: root, key: key)
    }

    /// Opens the leaf-key vault (the data key's KDF, once per run): nil for a `--no-passphrase` CA,
    /// whose leaf keys stay in clear. A first-release CA gets its vault from `unlockSigner`'s sealing.
    func unlockVault() throws -> LeafKeyVault? {
        collectPendingUnlock()
        if unlocked.vaultLoaded { return unlocked.vault }
        if let wrap = try database.publishedState().leafKeyWrap {
            unlocked.vault = try LeafKeyVault.open(wrap, passphrase: try passphrase(), source: passphrases.operationsField)
            unlocked.vaultLoaded = true
            return unlocked.vault
        }
        guard try keysEncrypted() else {
            unlocked.vaultLoaded = true
            return nil
        }
        // A first-release CA: the signer proves the passphrase, then seals the keys.
        _ = try unlockSigner()
        return unlocked.vault
    }

    /// A CA whose leaf keys are still in clear (made before keys were sealed) gets a data key and
    /// every key sealed, in one transaction, as soon as a run has the (verified) passphrase.
    private func sealLegacyLeafKeys() throws {
        guard !unlocked.vaultLoaded else { return }
        if try database.publishedState().leafKeyWrap != nil { return }
        guard try keysEncrypted() else {
            unlocked.vaultLoaded = true
            return
        }
        try upgradeToExclusive()
        let (vault, wrap) = try LeafKeyVault.create(passphrase: try passphrase())
        _ = try database.sealClearLeafKeys(wrap: wrap) { key, serial in try vault.seal(key, serial: serial) }
        unlocked.vault = vault
        unlocked.vaultLoaded = true
    }

    // MARK: - Leaf keys

    /// Every valid leaf with its private key (decrypted): what bundles, verify and one-off files ship.
    /// Asks for the passphrase (once per run) when the keys are sealed.
    public func validLeavesWithKeys() throws -> [LeafWithKey] {
        let leaves = try database.validLeaves()
        let keys = try leafKeys(leaves.map(\.serial))
        return leaves.compactMap { leaf in keys[leaf.serial].map { LeafWithKey(certificate: leaf, key: $0) } }
    }

    /// The private keys of the given leaves, decrypted.
    public func leafKeys(_ serials: [SerialNumber]) throws -> [SerialNumber: SecretBytes] {
        let stored = try database.leafKeys(serials)
        var result: [SerialNumber: SecretBytes] = [:]
        for (serial, key) in stored {
            switch key {
            case let .clear(bytes): result[serial] = bytes
            case let .sealed(box):
                guard let vault = try unlockVault() else {
                    throw ChpkiError.input(.caCorrupt, file: directory.file(CADatabase.fileName), field: serial.hex, "a sealed key but no key-wrapping record")
                }
                result[serial] = try vault.open(box, serial: serial)
            }
        }
        return result
    }
}
