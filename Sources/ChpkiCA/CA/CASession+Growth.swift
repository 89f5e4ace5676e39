import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Growth and retirement on an opened CA (SPEC §7): a new issuing intermediate signed by the root,
/// and revocations published as one CRL per CA that has issued leaves.
extension CASession {
    /// Serials of the CA certificates whose leaves need no reissue: every current one (several
    /// intermediates may be current at once, each covering the inventory of its day).
    public var currentAuthoritySerials: Set<SerialNumber> {
        Set(authorities.filter { $0.authorityRole == .current }.map(\.serial))
    }

    /// Serials of the CA certificates that can still sign a CRL (current or previous, not retired).
    public var liveAuthoritySerials: Set<SerialNumber> {
        Set(authorities.filter { $0.authorityRole != .retired }.map(\.serial))
    }

    /// The CA certificate that signed `leaf`, if it is one of this CA's.
    public func issuer(of leaf: IssuedCertificate) -> IssuedCertificate? {
        authorities.first { $0.serial == leaf.issuerSerial }
    }

    /// The root signs (with its passphrase, once) a new intermediate constrained to `constraints`,
    /// which signs `items`; the intermediate and the leaves are recorded in one transaction, then
    /// the files. It becomes the issuing CA: new and reissued leaves chain through it, existing
    /// leaves and every trust file stay as they are.
    public func issue(_ items: [IssuancePlan.Item], growingWith constraints: NameConstraints, progress: (any ProgressSink)? = nil,
                      phaseDone: (String) -> Void = { _ in }) throws -> (intermediate: Certificate, issued: [BatchIssuer.Issued]) {
        try requireExclusive()
        try SigningClock.check(issuer: root, now: now)
        let rootSigner = try unlockRootSigner(purpose: IssuingAuthorities.growthPurpose)
        let passphrase = try newKeyPassphrase(for: .intermediate)
        let subject = issuing.kind == .intermediate ? CARotation.nextGeneration(of: issuingCertificate.subject)
            : IssuingIntermediate.subject(below: root.subject)
        let (key, certificate) = try IssuingIntermediate.sign(subject: subject, now: now, constraints: constraints, by: rootSigner)
        let authority = CADatabase.NewAuthority(certificate: certificate, kind: .intermediate, issuerSerial: root.serial,
                                                keyPEM: try AuthorityKey.protect(key, passphrase: passphrase),
                                                sealedKey: try AuthorityKey.sealedCopy(of: key, serial: certificate.serial,
                                                                                       vault: passphrase == nil ? nil : try unlockVault()),
                                                role: .current)
        let signer = Signer(certificate: certificate, key: key)
        phaseDone("signed a new issuing intermediate with the root")
        let issued = try sign(items, signer: signer, issuer: certificate, progress: progress, phaseDone: phaseDone) { produce in
            try database.recordIssued(addingAuthority: authority, now: now, produce)
        }
        try publish()
        unlocked.signer = signer
        phaseDone("wrote index.txt and the CA files")
        // A CRL of the new issuing CA beside the others (as rotate-ca does), else `-crl_check`
        // (and every server with a CRL file) rejects its leaves until the next `chpki crl`.
        try revokeAndPublishCRLs([])
        phaseDone("signed the CRLs")
        return (certificate, issued)
    }

    /// Revokes each serial with its reason and publishes the next CRL of every CA (current or
    /// previous) that has issued leaves, plus the issuing one: crl.pem holds them all, one
    /// transaction. Each CA's key is opened once.
    @discardableResult
    public func revokeAndPublishCRLs(_ revocations: [(serial: SerialNumber, reason: RevocationReason)],
                                     lifetime: Period = CRLPublisher.defaultLifetime) throws -> CADatabase.SignedCRL {
        try requireExclusive()
        let withLeaves = try database.leafIssuers()
        let live = authorities.filter { $0.authorityRole != .retired && ($0.serial == issuing.serial || withLeaves.contains($0.serial)) }
        // The issuing CA's CRL first: readers that take only the first CRL of crl.pem get the one of the CA signing now.
        let ordered = live.filter { $0.serial == issuing.serial } + live.filter { $0.serial != issuing.serial }
        var signers: [SerialNumber: Signer] = [:]
        for authority in ordered { signers[authority.serial] = try authoritySigner(authority) }
        let signed = try database.revokeAndPublishCRLs(revocations, at: now, issuers: ordered.map(\.serial)) { issuer, input in
            try CRLPublisher.sign(input, signer: signers[issuer]!, now: now, lifetime: lifetime)
        }
        try publish()
        return signed
    }

    /// The signer of one CA certificate of this CA (the issuing one is cached by `unlockSigner()`).
    func authoritySigner(_ authority: IssuedCertificate) throws -> Signer {
        if authority.serial == issuing.serial { return try unlockSigner() }
        if authority.serial == root.serial { return try unlockRootSigner(purpose: "signing the root's CRL") }
        let name = directory.file(CADatabase.fileName) + " (CA key \(authority.serial.hex))"
        guard let pem = try database.authorityKeyPEM(serial: authority.serial) else {
            throw ChpkiError.input(.caKeyUnavailable, file: directory.file(CADatabase.fileName), field: authority.serial.hex,
                                   "the key of this CA certificate is not in the CA, so its CRL cannot be signed")
        }
        let certificate = try authority.certificate()
        let key = try AuthorityKey.open(pem, certificate: certificate, name: name, source: try passphraseField(for: authority.kind)) {
            try passphrase(for: authority.kind, purpose: "signing the CRL of \(authority.serial.hex)")
        }
        return Signer(certificate: certificate, key: key)
    }
}
