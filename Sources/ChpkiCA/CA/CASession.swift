import Foundation
import Synchronization
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// An opened CA, for the length of one command: it takes the directory lock FIRST (exclusive to
/// change the CA, shared to read it), then finishes what an interrupted run left (recovery), then
/// loads the CA from `ca.db`, and rewrites the files of the directory from the database (`CAFiles`).
/// Its keys (passphrases, signers, the leaf-key vault) are in CASession+Keys, its changes (each one
/// transaction, then the derived files) in CASession+Changes, +Growth and +Passphrase.
public final class CASession {
    public enum Access: Sendable { case read, change }

    public let directory: CADirectory
    let database: CADatabase
    private let lock: DirectoryLock
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

    /// The session's two secrets, each asked at most once (CAPassphrases).
    let passphrases: CAPassphrases
    /// What this session has unlocked so far (CASession+Keys).
    var unlocked = UnlockedKeys()

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
        self.now = now
        self.waiting = waiting
        let databasePath = directory.file(CADatabase.fileName)
        guard FileManager.default.fileExists(atPath: directory.path) else { throw Self.noCA(directory) }
        lock = try DirectoryLock(directory: directory.path, mode: access == .change ? .exclusive : .shared, waiting: waiting)
        // Everything below runs under the lock: what we read cannot change under us.
        guard FileManager.default.fileExists(atPath: databasePath) else { throw Self.noCA(directory) }
        if lock.mode == .shared && CADatabase.needsMigration(path: databasePath) { try lock.upgrade(waiting: waiting) }
        let database = try CADatabase(path: databasePath)
        self.database = database
        passphrases = CAPassphrases(operations: passphrase, root: rootPassphrase, rootKeyApart: { try database.rootKeyApart() })
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
        let view = try renderView()
        // The WAL is copied into ca.db (after a batch of leaves, 10 MB and two fsyncs) on another
        // thread while the files are written: nothing below reads the database.
        let checkpointing = DispatchGroup()
        database.checkpoint(in: checkpointing)
        defer { checkpointing.wait() }
        try CAFiles.write(view, to: directory, committed: database.lastCommitted)
    }

    // MARK: - The lock

    /// Every change checks it holds the exclusive lock (a read session never changes the CA).
    func requireExclusive() throws {
        guard lock.mode == .exclusive else { throw ChpkiError(.internalBug, "internal: a change needs the exclusive CA lock") }
    }

    /// A read session that must change the CA after all (a first-release CA's keys sealed).
    func upgradeToExclusive() throws { try lock.upgrade(waiting: waiting) }

    // MARK: - Reading

    public func certificates() throws -> [IssuedCertificate] { try database.certificates() }

    public func validLeaves() throws -> [IssuedCertificate] { try database.validLeaves() }

    /// Leaves issued with `issue --one-off` (outside the inventory): their renewals stay one-off.
    public func oneOffSerials() throws -> Set<SerialNumber> { try database.oneOffSerials() }

    /// Valid leaves not yet expired at the session's time (what `issue --prune` may retire).
    public func liveLeaves() throws -> [IssuedCertificate] { try database.liveLeaves(now: now) }

    /// The CRL the CA last published (nil before the first).
    public func publishedCRL() throws -> Data? { try database.publishedState().crlPEM }

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

}
