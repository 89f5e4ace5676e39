import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// The certificates `issue` retires (SPEC §1 `issue --prune`): live ones (valid or superseded, not
/// revoked, not expired) that a verifier would still accept although the inventory no longer
/// wants them.
///
/// - Gone: the host or service left the inventory -> cessationOfOperation.
/// - Replaced because its names changed (other SANs or subject, e.g. the host's old IP) -> superseded.
///   This includes the valid certificate this very run reissues with other names.
/// - NOT retired: a certificate superseded by a renewal, a key-type change or a CA rotation, i.e.
///   one that names exactly what its successor names. Renewal keeps the key, so revoking the old
///   certificate would protect nothing the new one does not expose; it expires on its own (at
///   most one renew_before window after its successor was issued). A key that must stop being
///   trusted is `chpki revoke`'s job.
/// - Never: one-off certificates (`issue server|client|admin`) that are not in the inventory, and
///   leaves of a retired CA (no CRL can be signed for them; rotate-ca --finish retired it).
public struct RetirementPlan: Sendable {
    public struct Item: Sendable {
        public var certificate: IssuedCertificate
        public var reason: RevocationReason
        public var why: String
    }

    public var items: [Item]

    public init(profiles: [CertificateProfile], plan: IssuancePlan, live: [IssuedCertificate], oneOffs: Set<SerialNumber>,
                liveIssuers: Set<SerialNumber>) {
        let renamed = plan.renamedIdentities
        var wanted: [CertificateIdentity: CertificateProfile] = [:]
        for profile in profiles { wanted[profile.identity] = profile }
        let validByIdentity = Dictionary(live.filter { $0.status == .valid }.map { ($0.identity, $0) }, uniquingKeysWith: { first, _ in first })
        var items: [Item] = []
        for leaf in live {
            guard let issuer = leaf.issuerSerial, liveIssuers.contains(issuer) else { continue }
            let oneOff = oneOffs.contains(leaf.serial)
            guard let profile = wanted[leaf.identity] else {
                if oneOff {
                    // A superseded one-off whose names differ from the one-off that replaced it.
                    if leaf.status == .superseded, let current = validByIdentity[leaf.identity], !Self.sameNames(leaf, current) {
                        items.append(Item(certificate: leaf, reason: .superseded, why: "replaced by \(current.serial.hex) with other names"))
                    }
                    continue
                }
                items.append(Item(certificate: leaf, reason: .cessationOfOperation, why: Self.goneReason(leaf)))
                continue
            }
            if leaf.status == .valid {
                // Reissued in this run with other names: once replaced, it names what the host no longer is.
                if renamed.contains(leaf.identity) {
                    items.append(Item(certificate: leaf, reason: .superseded, why: "names changed: reissued in this run"))
                }
            } else if !Self.sameNames(leaf, profile) {
                items.append(Item(certificate: leaf, reason: .superseded, why: "superseded; names what the inventory no longer does"))
            }
        }
        self.items = items.sorted { ($0.certificate.identity, $0.certificate.serial.hex) < ($1.certificate.identity, $1.certificate.serial.hex) }
    }

    static func goneReason(_ leaf: IssuedCertificate) -> String {
        leaf.service.map { "\($0) on \(leaf.host ?? leaf.name ?? "-") is no longer in the inventory" } ?? "no longer in the inventory"
    }

    package static func names(_ leaf: IssuedCertificate) -> (String, Set<String>) {
        (leaf.subject, Set(leaf.subjectAlternativeNames.map(\.description)))
    }

    static func sameNames(_ leaf: IssuedCertificate, _ other: IssuedCertificate) -> Bool { names(leaf) == names(other) }

    static func sameNames(_ leaf: IssuedCertificate, _ profile: CertificateProfile) -> Bool {
        names(leaf) == (profile.subject.rfc4514, Set(profile.subjectAlternativeNames.map(\.description)))
    }
}
