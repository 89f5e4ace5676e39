import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Every change of an opened CA (CASession), each one transaction under the exclusive lock and then
/// the derived files (`publish`): issuing, revoking with the CRL, a rotation's two steps, a new CA
/// certificate. Growth's are in CASession+Growth, the passphrase change in CASession+Passphrase.
extension CASession {
    /// Signs `items` (new keys, or the previous key where the item keeps it), records the batch in
    /// one transaction, then rewrites index.txt.
    public func issue(_ items: [IssuancePlan.Item], progress: (any ProgressSink)? = nil,
                      phaseDone: (String) -> Void = { _ in }) throws -> [BatchIssuer.Issued] {
        try requireExclusive()
        guard !items.isEmpty else { return [] }
        let signer = try unlockSigner()
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
        let vault = try unlockVault()
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
        unlocked.signer = nil
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
        unlocked.signer = nil
        try publish()
    }
}
