import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Whether the CA that signs leaves covers every name wanted, and what to do when it does not
/// (SPEC §7 "Growth"): a name outside an intermediate's constraints gets a new intermediate that
/// the root signs; a name outside the ROOT's constraints (a `--no-intermediate` CA, or one made
/// before intermediates were the default) can only be covered by a new root, and is refused.
public enum IssuingAuthorities {
    public enum Decision: Sendable {
        /// The issuing CA covers every name.
        case covered
        /// A new issuing intermediate, constrained to `constraints`; `uncovered` says why.
        case newIntermediate(constraints: NameConstraints, uncovered: [GeneralName])
    }

    /// Why the root key is opened on growth, for the refusal when its passphrase is missing.
    public static let growthPurpose = "a name outside the issuing intermediate's name constraints (growth: the root signs a new intermediate)"

    /// Decides for `profiles` (what is about to be signed). `inventory` (nil for a one-off without
    /// one) and `live` (valid leaves that stay) give the names the new intermediate must cover too.
    public static func decide(_ session: CASession, profiles: [CertificateProfile], inventory: Inventory?, live: [IssuedCertificate],
                              source: String?) throws -> Decision {
        if let rootConstraints = session.root.nameConstraints,
           let first = NameConstraintsCheck.violations(profiles, against: [rootConstraints]).first {
            throw refusalOutsideRoot(first, viaIntermediate: session.issuing.kind == .intermediate, source: source)
        }
        guard session.issuing.kind == .intermediate, let constraints = session.issuingCertificate.nameConstraints else { return .covered }
        let violations = NameConstraintsCheck.violations(profiles, against: [constraints])
        guard !violations.isEmpty else { return .covered }

        // The new intermediate covers the whole inventory of today and every leaf that stays, so
        // that renewing any of them needs nothing more.
        let wanted = profiles.flatMap(NameConstraintsCheck.constrainedNames(of:)) + live.flatMap(\.subjectAlternativeNames)
        let widened: NameConstraints
        if let inventory {
            widened = NameConstraintsPolicy.constraints(for: inventory, including: wanted)
        } else {
            let added = violations.map(\.name).map { name -> GeneralName in
                if case let .ip(bytes) = name {
                    return .network(containing: bytes, prefixLength: bytes.count == 16 ? NameConstraintsPolicy.ipv6Prefix : NameConstraintsPolicy.ipv4Prefix)
                }
                return name
            }
            var seen = Set<GeneralName>()
            widened = NameConstraints(permitted: (constraints.permitted + added).filter { seen.insert($0).inserted })
        }
        if let left = NameConstraintsCheck.violations(profiles, against: [widened]).first {
            throw ChpkiError.input(.caNameConstraints, file: source, field: left.profile.identity.host ?? left.profile.identity.name,
                                   "\(left.name) cannot be covered by a name-constrained intermediate (not a DNS name or IP address)")
        }
        var seen = Set<GeneralName>()
        return .newIntermediate(constraints: widened, uncovered: violations.map(\.name).filter { seen.insert($0).inserted })
    }

    static func refusalOutsideRoot(_ violation: NameConstraintsCheck.Violation, viaIntermediate: Bool, source: String?) -> ChpkiError {
        let identity = violation.profile.identity
        let why = viaIntermediate
            ? "this CA's ROOT carries the name constraints (a CA made before init-ca put them on the intermediate), so only a new root can widen them"
            : "this CA's root signs leaves itself and carries the name constraints (init-ca --no-intermediate), so only a new root can widen them"
        return ChpkiError.input(.caNameConstraints, file: source, field: identity.host ?? identity.name,
            "\(violation.name) is outside the CA's name constraints: \(why); run 'chpki rotate-ca' to make a root for the grown inventory " +
            "(a CA made by init-ca's default constrains its intermediate instead, and grows without a new root)")
    }

    /// The plan line's summary of what a new intermediate covers: the new short names and networks.
    public static func summary(_ uncovered: [GeneralName]) -> String {
        var parts: [String] = []
        for name in uncovered {
            switch name {
            case let .dns(value): parts.append(value)
            case let .ip(bytes):
                let network = GeneralName.network(containing: bytes, prefixLength: bytes.count == 16 ? NameConstraintsPolicy.ipv6Prefix : NameConstraintsPolicy.ipv4Prefix)
                parts.append(String(network.description.drop { $0 != ":" }.dropFirst()))
            default: parts.append(name.description)
            }
        }
        var seen = Set<String>()
        let unique = parts.filter { seen.insert($0).inserted }
        return unique.prefix(6).joined(separator: ", ") + (unique.count > 6 ? ", ... (\(unique.count) names and networks)" : "")
    }
}
