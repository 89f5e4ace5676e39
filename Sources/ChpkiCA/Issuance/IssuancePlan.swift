import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// What `chpki issue` will do with each certificate the inventory implies (docs/issuance.md).
public struct IssuancePlan: Sendable {
    public enum Action: String, Sendable, Codable {
        case issued, reissued, renewed, unchanged
        /// A live certificate the inventory no longer wants (`RetirementPlan`); `retired` once `--prune` revoked it.
        case retire, retired
    }

    public struct Item: Sendable {
        public var profile: CertificateProfile
        public var action: Action
        public var reason: String
        /// The valid certificate this one replaces (reissued, renewed) or is (unchanged); never its key.
        public var previous: IssuedCertificate?
        /// Whether the previous certificate's key is kept: renewals and name changes keep it, a key-type change does not.
        public var keepsKey: Bool
        /// A one-off `issue server|client|admin` (recorded as such: `issue --prune` never retires it).
        public var oneOff = false

        public init(profile: CertificateProfile, action: Action, reason: String, previous: IssuedCertificate?, keepsKey: Bool) {
            self.profile = profile
            self.action = action
            self.reason = reason
            self.previous = previous
            self.keepsKey = keepsKey
        }
    }

    public var items: [Item]

    public var work: [Item] { items.filter { $0.action != .unchanged } }

    /// Identities this plan reissues with other names (SANs or subject): their current certificate
    /// will name what the host no longer is, so `issue --prune` retires it.
    public var renamedIdentities: Set<CertificateIdentity> {
        Set(items.filter { item in
            guard item.action == .reissued, let previous = item.previous else { return false }
            return !RetirementPlan.sameNames(previous, item.profile)
        }.map(\.profile.identity))
    }

    /// Compares each profile with the valid certificate of the same identity; with `acceptedIssuers`,
    /// a certificate from any other issuer (the CA was rotated) is reissued. Several intermediates
    /// may be current at once (growth): a leaf of any of them stays.
    /// `issuerEnds`: the end of the CA that signs renewals (a leaf that already ends with it is not due).
    public init(profiles: [CertificateProfile], existing: [IssuedCertificate], now: Date, acceptedIssuers: Set<SerialNumber>? = nil,
                issuerEnds: Date? = nil) {
        var current: [CertificateIdentity: IssuedCertificate] = [:]
        for record in existing where record.status == .valid && !record.kind.isAuthority {
            current[record.identity] = record
        }
        items = profiles.map { profile in
            guard let previous = current[profile.identity] else {
                return Item(profile: profile, action: .issued, reason: "new", previous: nil, keepsKey: false)
            }
            let stored = previous.profile
            let wanted = profile.essentials
            if let stored, stored != wanted {
                let keyChanged = stored.key != wanted.key
                return Item(profile: profile, action: .reissued, reason: Self.differences(stored, wanted),
                            previous: previous, keepsKey: !keyChanged)
            }
            if let acceptedIssuers, let previousIssuer = previous.issuerSerial, !acceptedIssuers.contains(previousIssuer) {
                return Item(profile: profile, action: .reissued, reason: "CA rotated", previous: previous, keepsKey: true)
            }
            if RenewalRule.isDue(notAfter: previous.notAfter, window: profile.renewBefore, now: now, issuerEnds: issuerEnds) {
                let reason = previous.notAfter <= now ? "expired \(RFC3339.format(previous.notAfter))"
                    : "expires \(RFC3339.format(previous.notAfter)), within renew_before \(profile.renewBefore)"
                return Item(profile: profile, action: .renewed, reason: reason, previous: previous, keepsKey: true)
            }
            return Item(profile: profile, action: .unchanged, reason: "valid until \(RFC3339.format(previous.notAfter))",
                        previous: previous, keepsKey: true)
        }
    }

    package static func differences(_ old: CertificateProfile.Essentials, _ new: CertificateProfile.Essentials) -> String {
        var changes: [String] = []
        if old.key != new.key { changes.append("key type \(old.key) -> \(new.key)") }
        if old.subject != new.subject { changes.append("subject \(old.subject) -> \(new.subject)") }
        if old.sans != new.sans {
            let added = Set(new.sans).subtracting(old.sans).sorted()
            let removed = Set(old.sans).subtracting(new.sans).sorted()
            changes.append("SANs" + (added.isEmpty ? "" : " +\(added.joined(separator: ",+"))")
                           + (removed.isEmpty ? "" : " -\(removed.joined(separator: ",-"))"))
        }
        if old.eku != new.eku { changes.append("EKU \(old.eku.joined(separator: "+")) -> \(new.eku.joined(separator: "+"))") }
        return changes.joined(separator: "; ")
    }
}
