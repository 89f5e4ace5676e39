/// Whether a name falls inside a CA's name constraints, by RFC 5280's rules as OpenSSL applies them:
/// a DNS name is permitted by a subtree equal to it or a suffix after a dot; an IP by a network
/// containing it. Used to refuse certificates every verifier would reject.
public enum NameConstraintsCheck {
    /// The first SAN of `names` outside `constraints`, or nil when all are inside.
    public static func firstViolation(_ names: [GeneralName], _ constraints: NameConstraints) -> GeneralName? {
        names.first { !isPermitted($0, constraints) }
    }

    /// Refuses profiles with a SAN outside the constraints of `authority`'s root or intermediate.
    public static func check(_ profiles: [CertificateProfile], against authority: CertificateAuthority, source: String?) throws {
        let constraints = [authority.root, authority.intermediate].compactMap { $0?.nameConstraints }
        for constraint in constraints {
            for profile in profiles {
                if let name = firstViolation(profile.subjectAlternativeNames, constraint) {
                    throw ChpkiError.input(file: source, field: profile.identity.host ?? profile.identity.name,
                        "\(name) is outside the CA's name constraints, so every verifier would reject the \(profile.identity.service ?? "") certificate; " +
                        "the root permits \(constraint.permitted.map(\.description).joined(separator: ", "))")
                }
            }
        }
    }

    static func isPermitted(_ name: GeneralName, _ constraints: NameConstraints) -> Bool {
        switch name {
        case let .dns(host):
            let bases = constraints.permitted.compactMap { if case let .dns(base) = $0 { return base } else { return nil } }
            let excluded = constraints.excluded.contains { if case let .dns(base) = $0 { return within(host, base) } else { return false } }
            return !excluded && (bases.isEmpty || bases.contains { within(host, $0) })
        case let .ip(address):
            let networks = constraints.permitted.compactMap { entry -> ([UInt8], [UInt8])? in
                if case let .ipNetwork(network, mask) = entry, network.count == address.count { return (network, mask) }
                return nil
            }
            // As in OpenSSL: once any IP subtree is permitted, every IP must fall in one of its family.
            let anyIP = constraints.permitted.contains { if case .ipNetwork = $0 { return true } else { return false } }
            return !anyIP || networks.contains { network, mask in zip(zip(address, mask), network).allSatisfy { ($0.0 & $0.1) == $1 } }
        default:
            return true
        }
    }

    static func within(_ host: String, _ base: String) -> Bool {
        let host = host.lowercased(), base = base.lowercased()
        if base.hasPrefix(".") { return host.hasSuffix(base) }
        return host == base || host.hasSuffix("." + base)
    }
}
