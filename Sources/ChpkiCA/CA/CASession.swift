import Foundation
import Synchronization
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// An opened CA, for the length of one command: it takes the directory lock FIRST (exclusive to
/// change the CA, shared to read it), then finishes what an interrupted run left (recovery), then
/// loads the CA from `ca.db`. It holds the signer, the passphrase (asked once per run) and the
/// leaf-key vault, offers every change of the CA as one method (one transaction, then the derived
/// files), and rewrites the files of the directory from the database (`CAFiles`).
public final class CASession {
    public enum Access: Sendable { case read, change }

    public let directory: CADirectory
    package let database: CADatabase
    private let lock: DirectoryLock
    private let passphraseSource: PassphraseSource?
    private let rootPassphraseSource: PassphraseSource?
    private let waiting: () -> Void
    public let now: Date

    public private(set) var authorities: [IssuedCertificate] = []
    /// The current root.
    public private(set) var root: Certificate
    /// The CA certificate whose key signs leaves and CRLs: the primary intermediate, else the root.
    public private(set) var issuing: IssuedCertificate
    public private(set) var issuingCertificate: Certificate
    /// The root a rotation is replacing, else nil.
    public private(set) var previousRoot: Certificate?

    private var cachedPassphrase: Passphrase?
    private var cachedRootPassphrase: Passphrase?
    /// Internal so that growth (CASession+Growth) can replace it with the new intermediate's.
    var cachedSigner: Signer?
    private var vaultLoaded = false
    private var cachedVault: LeafKeyVault?

    /// Opens the CA in `directory`. `passphrase` is where the operations passphrase comes from when
    /// one is needed, `rootPassphrase` where the root's does (growth, rotation).
    public static func open(_ directory: CADirectory, access: Access, passphrase: PassphraseSource? = nil,
                            rootPassphrase: PassphraseSource? = nil, now: Date,
                            waiting: @escaping () -> Void = {}) throws -> CASession {
        try CASession(directory: directory, access: access, passphrase: passphrase, rootPassphrase: rootPassphrase, now: now, waiting: waiting)
    }

    private init(directory: CADirectory, access: Access, passphrase: PassphraseSource?, rootPassphrase: PassphraseSource?,
                 now: Date, waiting: @escaping () -> Void) throws {
        self.directory = directory
        self.passphraseSource = passphrase
        self.rootPassphraseSource = rootPassphrase
        self.now = now
        self.waiting = waiting
        let databasePath = directory.file(CADatabase.fileName)
        guard FileManager.default.fileExists(atPath: directory.path) else { throw Self.noCA(directory) }
        lock = try DirectoryLock(directory: directory.path, mode: access == .change ? .exclusive : .shared, waiting: waiting)
        // Everything below runs under the lock: what we read cannot change under us.
        guard FileManager.default.fileExists(atPath: databasePath) else { throw Self.noCA(directory) }
        if lock.mode == .shared && CADatabase.needsMigration(path: databasePath) { try lock.upgrade(waiting: waiting) }
        database = try CADatabase(path: databasePath)
        if try database.publishedState().legacyFilesPending {
            try lock.upgrade(waiting: waiting)
            try LegacyCADirectory.adopt(directory, into: database)
        }
        (authorities, root, issuing, issuingCertificate, previousRoot) = try Self.load(database, directory)
        try recover()
    }

    static func noCA(_ directory: CADirectory) -> ChpkiError {
        directory.missingCA
    }

    private static func load(_ database: CADatabase, _ directory: CADirectory) throws
        -> ([IssuedCertificate], Certificate, IssuedCertificate, Certificate, Certificate?) {
        let authorities = try database.authorities()
        let roles = AuthorityRoles(authorities)
        guard let rootRecord = roles.currentRoot else {
            throw ChpkiError.input(.caCorrupt, file: directory.file(CADatabase.fileName), field: "certificates", "no current root CA certificate")
        }
        let issuing = roles.primaryIntermediate ?? rootRecord
        let root = try parse(rootRecord, directory)
        return (authorities, root, issuing, issuing.serial == rootRecord.serial ? root : try parse(issuing, directory),
                try roles.previousRoot.map { try parse($0, directory) })
    }

    private static func parse(_ record: IssuedCertificate, _ directory: CADirectory) throws -> Certificate {
        do { return try record.certificate() } catch {
            throw ChpkiError.input(.caCorrupt, file: directory.file(CADatabase.fileName), field: record.serial.hex, "the stored CA certificate is unreadable: \(error)")
        }
    }

    // MARK: - Recovery and derived files

    /// Compares the directory's files with the database and rewrites what disagrees; removes what
    /// killed runs left behind. A reader upgrades to the exclusive lock only when there is something to do.
    private func recover() throws {
        var view = try renderView()
        let stale = CAFiles.staleStaging(in: directory)
        guard !CAFiles.differences(view, in: directory).isEmpty || !stale.isEmpty else { return }
        if lock.mode == .shared {
            try lock.upgrade(waiting: waiting)
            view = try renderView()  // another run may have changed the CA while we waited
        }
        CAFiles.removeStaging(CAFiles.staleStaging(in: directory), in: directory)
        try CAFiles.write(view, to: directory)
    }

    private func renderView() throws -> CAFiles.View {
        var keys: [SerialNumber: Data] = [:]
        for authority in authorities {
            if let key = try database.authorityKeyPEM(serial: authority.serial) { keys[authority.serial] = key }
        }
        return CAFiles.render(.init(authorities: authorities, authorityKeys: keys, state: try database.publishedState(),
                                    indexEntries: try database.indexEntries(), now: now))
    }

    /// After a committed change: reload the CA and write the derived files (index.txt, crl.pem, CA files).
    package func publish() throws {
        (authorities, root, issuing, issuingCertificate, previousRoot) = try Self.load(database, directory)
        try CAFiles.write(try renderView(), to: directory, committed: database.lastCommitted)
    }

    // MARK: - Reading

    public func certificates() throws -> [IssuedCertificate] { try database.certificates() }

    public func validLeaves() throws -> [IssuedCertificate] { try database.validLeaves() }

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
                guard let vault = try vault() else {
                    throw ChpkiError.input(.caCorrupt, file: directory.file(CADatabase.fileName), field: serial.hex, "a sealed key but no key-wrapping record")
                }
                result[serial] = try vault.open(box, serial: serial)
            }
        }
        return result
    }

    /// Every CA certificate a host must trust now: the root, and during a rotation the previous one too.
    public var trustedRoots: [Certificate] { [root] + (previousRoot.map { [$0] } ?? []) }

    /// Valid intermediates (current and, during a rotation, previous), by serial hex, as PEM.
    public var intermediates: [String: Data] {
        var result: [String: Data] = [:]
        for authority in authorities where authority.kind == .intermediate && authority.authorityRole != .retired {
            result[authority.serial.hex] = Data(authority.certificatePEM.utf8)
        }
        return result
    }

    /// The name constraints on the path of the issuing CA (root and intermediate).
    public var issuingNameConstraints: [NameConstraints] {
        [root.nameConstraints, issuing.serial == root.serial ? nil : issuingCertificate.nameConstraints].compactMap { $0 }
    }

    /// Whether the CA keys are encrypted (false for `--no-passphrase`).
    public func keysEncrypted() throws -> Bool {
        guard let pem = try issuingKeyPEM() else { return true }
        return AuthorityKey.isEncrypted(pem)
    }

    // MARK: - Secrets

    /// The operations passphrase (issuing keys, leaf-key data key), asked once per run.
    public func passphrase() throws -> Passphrase {
        if let cachedPassphrase { return cachedPassphrase }
        let value = try operationsSource.existingPassphrase(purpose: "the CA key (operations)")
        cachedPassphrase = value
        return value
    }

    private var operationsSource: PassphraseSource { passphraseSource ?? PassphraseSource(file: nil) }
    private var rootSource: PassphraseSource { rootPassphraseSource ?? .root(file: nil) }

    /// Whether the root keys are under their own passphrase (SPEC §6); false for a CA made with one.
    public func rootKeyApart() throws -> Bool { try database.rootKeyApart() }

    /// The passphrase that opens the root keys, asked once per run: the root passphrase, or the
    /// operations one for a CA that has only one. `purpose` says why, when it cannot be asked for.
    public func rootPassphrase(purpose: String = "this command") throws -> Passphrase {
        guard try rootKeyApart() else { return try passphrase() }
        if let cachedRootPassphrase { return cachedRootPassphrase }
        let source = rootSource
        guard source.isGiven || Terminal.standardInputIsATerminal else {
            throw ChpkiError.input(.passphraseRootNeeded, file: nil, field: "root passphrase",
                                   "\(purpose) needs the root passphrase, which opens \(CADirectory.rootKey): give it with \(source.alternatives); nothing was changed")
        }
        let value = try source.existingPassphrase(purpose: "the root key")
        cachedRootPassphrase = value
        return value
    }

    /// The passphrase that wraps (and opens) a CA key of `kind`.
    package func passphrase(for kind: CertificateKind, purpose: String = "this command") throws -> Passphrase {
        AuthorityKey.secret(of: kind, rootApart: try rootKeyApart()) == .root ? try rootPassphrase(purpose: purpose) : try passphrase()
    }

    /// Where the passphrase for a key of `kind` comes from, for messages.
    func passphraseField(for kind: CertificateKind) throws -> String {
        AuthorityKey.secret(of: kind, rootApart: try rootKeyApart()) == .root ? rootSource.field : operationsSource.field
    }

    /// The passphrase to encrypt a new CA key of `kind` with: nil for a `--no-passphrase` CA.
    public func newKeyPassphrase(for kind: CertificateKind) throws -> Passphrase? {
        try keysEncrypted() ? try passphrase(for: kind) : nil
    }

    /// Opens the issuing key and the leaf-key data key now, so that a missing or wrong operations
    /// passphrase is refused before the command does anything, even when nothing is due.
    /// The two KDFs of a run, the issuing key's and the data key's (scrypt, ~0.1 s each on one
    /// core), run side by side when both are under the operations passphrase.
    public func unlockOperations() throws {
        let opening = DispatchGroup()
        let early = Mutex<Result<LeafKeyVault, any Error>?>(nil)
        if cachedSigner == nil, !vaultLoaded, AuthorityKey.secret(of: issuing.kind, rootApart: try rootKeyApart()) == .operations,
           let wrap = try database.publishedState().leafKeyWrap {
            let passphrase = try passphrase()
            let source = operationsSource.field
            DispatchQueue.global(qos: .userInitiated).async(group: opening) {
                let result = Result { try LeafKeyVault.open(wrap, passphrase: passphrase, source: source) }
                early.withLock { $0 = result }
            }
        }
        defer { opening.wait() }
        _ = try signer()
        opening.wait()
        // A failure is left for vault() to report, as it would have without the early start.
        if !vaultLoaded, case let .success(vault)? = early.withLock({ $0 }) {
            cachedVault = vault
            vaultLoaded = true
        }
        _ = try vault()
    }

    private func issuingKeyPEM() throws -> Data? {
        try keyPEM(of: issuing, fileName: issuing.kind == .root ? CADirectory.rootKey : CADirectory.intermediateKey)
    }

    /// A CA key from the database; a first-release CA whose key was never adopted is read from its file.
    private func keyPEM(of authority: IssuedCertificate, fileName: String) throws -> Data? {
        if let pem = try database.authorityKeyPEM(serial: authority.serial) { return pem }
        return RegularFile.contents(directory.file(fileName), limit: ReadLimits.caFile)
    }

    /// Decrypts the issuing key (the one CA-key KDF of a run) and checks it belongs to the issuing certificate.
    public func signer() throws -> Signer {
        if let cachedSigner { return cachedSigner }
        let name = directory.file(issuing.kind == .root ? CADirectory.rootKey : CADirectory.intermediateKey)
        guard let pem = try issuingKeyPEM() else { throw ChpkiError.input(.caKeyUnavailable, file: name, field: nil, "cannot read the CA key") }
        let key = try AuthorityKey.open(pem, certificate: issuingCertificate, name: name, source: try passphraseField(for: issuing.kind)) {
            try passphrase(for: issuing.kind)
        }
        let signer = Signer(certificate: issuingCertificate, key: key)
        cachedSigner = signer
        try sealLegacyLeafKeys()
        return signer
    }

    /// The root's own signer, for what only the root signs (a rotation's cross-certificate, a new
    /// intermediate): asks for the root passphrase; `purpose` names the command when it is missing.
    public func rootSigner(purpose: String = "this command") throws -> Signer {
        if issuing.serial == root.serial { return try signer() }
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

    /// The leaf-key vault: nil for a `--no-passphrase` CA, whose leaf keys stay in clear.
    func vault() throws -> LeafKeyVault? {
        if vaultLoaded { return cachedVault }
        if let wrap = try database.publishedState().leafKeyWrap {
            cachedVault = try LeafKeyVault.open(wrap, passphrase: try passphrase(), source: operationsSource.field)
            vaultLoaded = true
            return cachedVault
        }
        guard try keysEncrypted() else {
            vaultLoaded = true
            return nil
        }
        // A first-release CA: the signer proves the passphrase, then seals the keys.
        _ = try signer()
        return cachedVault
    }

    /// A CA whose leaf keys are still in clear (made before keys were sealed) gets a data key and
    /// every key sealed, in one transaction, as soon as a run has the (verified) passphrase.
    private func sealLegacyLeafKeys() throws {
        guard !vaultLoaded else { return }
        if try database.publishedState().leafKeyWrap != nil { return }
        guard try keysEncrypted() else {
            vaultLoaded = true
            return
        }
        try lock.upgrade(waiting: waiting)
        let (vault, wrap) = try LeafKeyVault.create(passphrase: try passphrase())
        _ = try database.sealClearLeafKeys(wrap: wrap) { key, serial in try vault.seal(key, serial: serial) }
        cachedVault = vault
        vaultLoaded = true
    }

    // MARK: - Changes

    func requireExclusive() throws {
        guard lock.mode == .exclusive else { throw ChpkiError(.internalBug, "internal: a change needs the exclusive CA lock") }
    }

    /// Signs `items` (new keys, or the previous key where the item keeps it), records the batch in
    /// one transaction, then rewrites index.txt.
    public func issue(_ items: [IssuancePlan.Item], progress: (any ProgressSink)? = nil,
                      phaseDone: (String) -> Void = { _ in }) throws -> [BatchIssuer.Issued] {
        try requireExclusive()
        guard !items.isEmpty else { return [] }
        let signer = try signer()
        phaseDone("opened the CA key")
        let issued = try sign(items, signer: signer, issuer: issuingCertificate, progress: progress, phaseDone: phaseDone) { produce in
            try database.recordIssued(now: now, produce)
        }
        try publish()
        phaseDone("wrote index.txt")
        return issued
    }

    /// Signs `items` with `signer`, the key of `issuer` (new keys, or the previous key where an item
    /// keeps it). `recording` opens the transaction that records them and runs `produce` in it, which
    /// hands each leaf's row (its key sealed for `ca.db`) over in item order as the workers sign it:
    /// the batch is recorded while it is being signed, and committed once, whole.
    package func sign(_ items: [IssuancePlan.Item], signer: Signer, issuer: Certificate, progress: (any ProgressSink)?, phaseDone: (String) -> Void,
              recording: (_ produce: (_ record: (CADatabase.LeafRow) throws -> Void) throws -> Void) throws -> Void) throws -> [BatchIssuer.Issued] {
        try SigningClock.check(issuer: issuer, now: now)
        // Read before the transaction (which cannot read through the queue): the kept keys, and the
        // vault, opened once (the passphrase's KDF) so that the workers only seal.
        let kept = try leafKeys(items.filter(\.keepsKey).compactMap { $0.previous?.serial })
        let vault = try vault()
        let now = now
        let createdAt = CADatabase.storedDate(now)
        let issuerSerial = issuer.serial
        var signed: [(leaf: BatchIssuer.Issued, row: CADatabase.LeafRow)] = []
        try recording { record in
            signed = try BatchIssuer.sign(items, signer: signer, issuerNotAfter: issuer.notAfter, previousKeys: kept, now: now,
                                          progress: progress, finish: { leaf in
                // Sealed on the signing thread: a passphrase-protected CA stores no key in clear.
                let key: CADatabase.StoredKey = try vault.map { .sealed(try $0.seal(leaf.key, serial: leaf.signed.serial)) } ?? .clear(leaf.key)
                let row = try CADatabase.LeafRow(.init(signed: leaf.signed, profile: leaf.item.profile, issuerSerial: issuerSerial, key: key,
                                                       supersedes: leaf.item.previous?.serial, oneOff: leaf.item.oneOff), createdAt: createdAt)
                return (leaf: leaf, row: row)
            }, record: { try record($0.row) })
        }
        phaseDone("signed \(items.count) certificates and recorded them in one transaction, as they were signed")
        return signed.map(\.leaf)
    }

    /// Revokes `serials` (none: just a fresh CRL) and signs the next CRL, one transaction; then crl.pem and index.txt.
    public func revokeAndPublishCRL(_ serials: [SerialNumber], reason: RevocationReason = .unspecified,
                                    lifetime: Period = CRLPublisher.defaultLifetime) throws -> CADatabase.SignedCRL {
        // Every CA with leaves publishes its CRL (CASession+Growth), not only the one signing now.
        try revokeAndPublishCRLs(serials.map { ($0, reason) }, lifetime: lifetime)
    }

    /// rotate-ca: records the new root (and intermediate) as current and the old ones as previous.
    func startRotation(_ authorities: [CADatabase.NewAuthority], crossSigned: Certificate) throws {
        try requireExclusive()
        try database.startRotation(authorities, crossSigned: crossSigned, now: now)
        cachedSigner = nil
        try publish()
    }

    /// rotate-ca --finish: retires the previous authorities.
    func finishRotation() throws {
        try requireExclusive()
        try database.finishRotation()
        try publish()
    }

    /// A new CA certificate (e.g. an issuing intermediate for a grown inventory), and its files.
    public func recordAuthority(_ authority: CADatabase.NewAuthority) throws {
        try requireExclusive()
        try database.recordAuthority(authority, now: now)
        cachedSigner = nil
        try publish()
    }
}
