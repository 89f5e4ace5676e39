import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// `chpki rotate-ca`: a new root (and intermediate) beside the old one, a cross-certificate of the
/// new root by the old, and a trust bundle of both, so old and new leaves are trusted during the
/// overlap; `--finish` retires the old root once no live leaf depends on it.
public enum CARotation {
    public struct Started: Sendable {
        public var root: Certificate
        public var crossSigned: Certificate
        public var intermediate: Certificate?
    }

    public static func start(_ session: CASession, inventory: Inventory?) throws -> Started {
        let directory = session.directory
        let oldRoot = session.root
        guard session.previousRoot == nil else {
            throw ChpkiError.input(.caRotationUnderWay, file: directory.file(CADirectory.previousRoot), field: nil,
                                   "a rotation is already under way: re-issue the leaves ('chpki issue', 'chpki renew'), then 'chpki rotate-ca --finish'")
        }
        try SigningClock.check(issuer: oldRoot, now: session.now)
        let old = try session.unlockRootSigner(purpose: "rotate-ca")
        // The new keys are protected as the old ones were: the root under the root passphrase, the
        // intermediate under the operations one (the same one for a CA with one), or not at all.
        let passphrase = try session.newKeyPassphrase(for: .root)
        let keyType = inventory?.ca.key ?? oldRoot.keyType ?? .ecP384
        let key = try PrivateKey.generate(keyType)
        let lifetime = oldRoot.notAfter.timeIntervalSince(oldRoot.notBefore)
        let now = session.now
        let notBefore = now.addingTimeInterval(-CAInitializer.backdating)
        let notAfter = inventory?.ca.validity?.after(now) ?? now.addingTimeInterval(lifetime)
        let hasIntermediate = session.issuing.kind == .intermediate
        // The constraints go where the old CA had them: on the intermediate (so growth needs no new
        // root), or on the root of a CA whose root signs leaves.
        let oldConstraints = hasIntermediate ? session.issuingCertificate.nameConstraints ?? oldRoot.nameConstraints : oldRoot.nameConstraints
        let constraints = oldConstraints == nil ? nil : inventory.map { NameConstraintsPolicy.constraints(for: $0) } ?? oldConstraints
        let subject = nextGeneration(of: oldRoot.subject)
        let rootTemplate = CertificateTemplate(subject: subject, serial: try .random(), notBefore: notBefore, notAfter: notAfter,
                                               certificateAuthority: .init(), keyUsage: [.keyCertSign, .cRLSign],
                                               nameConstraints: hasIntermediate ? nil : constraints)
        let root = try rootTemplate.sign(publicKeyOf: key, by: Signer(certificate: nil, key: key))
        // The same subject and key, vouched for by the old root: clients that trust only the old root
        // can still build a path to leaves of the new one.
        var crossTemplate = rootTemplate
        crossTemplate.serial = try .random()
        crossTemplate.notAfter = min(notAfter, oldRoot.notAfter)
        let crossSigned = try crossTemplate.sign(publicKeyOf: key, by: old)

        var authorities = [CADatabase.NewAuthority(certificate: root, kind: .root, issuerSerial: nil,
                                                   keyPEM: try AuthorityKey.protect(key, passphrase: passphrase), role: .current)]
        var intermediate: Certificate?
        if hasIntermediate {
            let (intermediateKey, certificate) = try IssuingIntermediate.sign(subject: nextGeneration(of: session.issuingCertificate.subject),
                                                                              now: now, constraints: constraints, by: Signer(certificate: root, key: key))
            let passphrase = try session.newKeyPassphrase(for: .intermediate)
            authorities.append(.init(certificate: certificate, kind: .intermediate, issuerSerial: root.serial,
                                     keyPEM: try AuthorityKey.protect(intermediateKey, passphrase: passphrase),
                                     sealedKey: try AuthorityKey.sealedCopy(of: intermediateKey, serial: certificate.serial,
                                                                            vault: passphrase == nil ? nil : try session.unlockVault()),
                                     role: .current))
            intermediate = certificate
        }
        // One transaction; the files (root.pem, previous-*, cross-signed.pem, trust-bundle.pem) follow from it.
        try session.startRotation(authorities, crossSigned: crossSigned)
        // A CRL of the new issuing CA beside those of the old ones, so `-crl_check` passes for the
        // leaves `issue` signs next without a manual `chpki crl`.
        try session.revokeAndPublishCRLs([])
        return Started(root: root, crossSigned: crossSigned, intermediate: intermediate)
    }

    /// What the hosts must show before `--finish`: each record in `state` (RotationGate), for
    /// `hosts`; nil: not checked (`--force-unrecorded`, a site that installs without chpki's rollout).
    public struct Installed: Sendable {
        /// Throws when a host has not installed the new root's trust and leaves; `newRoot` is the
        /// lower-case hex SHA-256 of the new root's DER. The rollout layer supplies it (`RotationGate`),
        /// so CA rotation does not call up into the install records.
        public var check: @Sendable (_ newRoot: String) throws -> Void

        public init(check: @escaping @Sendable (_ newRoot: String) throws -> Void) {
            self.check = check
        }
    }

    /// Retires the previous root; refuses while a valid, unexpired leaf was issued by the old CA,
    /// and while a host's record does not show the new root's trust and leaves (`installed`).
    public static func finish(_ session: CASession, installed: Installed?) throws -> Int {
        let directory = session.directory
        guard session.previousRoot != nil else {
            throw ChpkiError.input(.caNoRotation, file: directory.path, field: "--finish", "no rotation is under way (there is no previous root)")
        }
        let oldIssuers = Set(session.authorities.filter { $0.authorityRole == .previous }.map(\.serial))
        let live = try session.validLeaves().filter { $0.issuerSerial.map(oldIssuers.contains) == true && $0.notAfter > session.now }
        if let first = live.first {
            throw ChpkiError.input(.caRotationUnfinished, file: directory.path, field: "--finish",
                "\(live.count) valid certificate(s) still chain only to the old root (first: \(first.service ?? "") \(first.name ?? first.subject)); run 'chpki issue' or 'chpki renew' first")
        }
        if let installed {
            let newRoot = session.root.fingerprintSHA256.replacingOccurrences(of: ":", with: "").lowercased()
            try installed.check(newRoot)
        }
        try session.finishRotation()
        // crl.pem drops the retired CAs' CRLs and holds a fresh one for every live CA with leaves.
        try session.revokeAndPublishCRLs([])
        return oldIssuers.count
    }

    /// `CN=Cinc Root CA` -> `CN=Cinc Root CA G2`, `... G2` -> `... G3`.
    static func nextGeneration(of name: DistinguishedName) -> DistinguishedName {
        var name = name
        guard let index = name.attributes.lastIndex(where: { $0.type == "CN" }) else { return name }
        let value = name.attributes[index].value
        if let range = value.range(of: #" G(\d+)$"#, options: .regularExpression), let number = Int(value[range].dropFirst(2)) {
            name.attributes[index].value = value.replacingCharacters(in: range, with: " G\(number + 1)")
        } else {
            name.attributes[index].value = String(value.prefix(61)) + " G2"
        }
        return name
    }
}
