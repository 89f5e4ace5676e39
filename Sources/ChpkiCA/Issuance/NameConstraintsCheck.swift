import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Whether a name falls inside a CA's name constraints, by RFC 5280's rules as OpenSSL applies them:
/// a DNS name is permitted by a subtree equal to it or a suffix after a dot; an IP by a network
/// containing it; once any subtree of a type is permitted, every name of that type must be in one.
/// Used to refuse certificates every verifier would reject.
public struct NameConstraintsCheck {
    private let permittedDNS: Set<String>
    private let permittedSubdomainsOnly: Set<String>
    private let excludedDNS: Set<String>
    private let networks: [(network: [UInt8], mask: [UInt8])]

    /// Compiled once per CA: a root constrained to 1,000 hosts has 1,000 subtrees, and every SAN
    /// of every certificate is checked against them.
    public init(_ constraints: NameConstraints) {
        var permitted = Set<String>(), subdomains = Set<String>(), excluded = Set<String>()
        var networks: [([UInt8], [UInt8])] = []
        for name in constraints.permitted {
            switch name {
            case let .dns(base) where base.hasPrefix("."): subdomains.insert(String(base.dropFirst()).lowercased())
            case let .dns(base): permitted.insert(base.lowercased())
            case let .ipNetwork(network, mask): networks.append((network, mask))
            default: break
            }
        }
        for case let .dns(base) in constraints.excluded { excluded.insert(base.lowercased()) }
        permittedDNS = permitted
        permittedSubdomainsOnly = subdomains
        excludedDNS = excluded
        self.networks = networks
    }

    /// The first of `names` outside the constraints, or nil when all are inside.
    public func firstViolation(_ names: [GeneralName]) -> GeneralName? {
        names.first { !isPermitted($0) }
    }

    func isPermitted(_ name: GeneralName) -> Bool {
        switch name {
        case let .dns(host):
            let labels = host.lowercased().split(separator: ".", omittingEmptySubsequences: false)
            // Every suffix of the name: "a.b.c", "b.c", "c".
            let suffixes = labels.indices.map { labels[$0...].joined(separator: ".") }
            if suffixes.contains(where: excludedDNS.contains) { return false }
            if permittedDNS.isEmpty && permittedSubdomainsOnly.isEmpty { return true }
            return suffixes.contains(where: permittedDNS.contains) || suffixes.dropFirst().contains(where: permittedSubdomainsOnly.contains)
        case let .ip(address):
            guard !networks.isEmpty else { return true }
            return networks.contains { network, mask in
                network.count == address.count && zip(zip(address, mask), network).allSatisfy { ($0.0 & $0.1) == $1 }
            }
        default:
            return true
        }
    }

    /// A SAN of a profile that a CA on the signing path does not permit.
    public struct Violation: Sendable {
        public var profile: CertificateProfile
        public var name: GeneralName
    }

    /// The names of a profile that verifiers hold against name constraints: its SANs, and, when it
    /// has no DNS SAN, its CN if that is a host name. Java's PKIX (JSSE, so OpenSearch) checks such
    /// a CN against the DNS subtrees: the admin certificate (CN=admin, no SAN) must be covered too.
    /// A client CN such as `patroni@backend-1` is no host name and is not checked.
    public static func constrainedNames(of profile: CertificateProfile) -> [GeneralName] {
        let sans = profile.subjectAlternativeNames
        if sans.contains(where: { if case .dns = $0 { return true } else { return false } }) { return sans }
        guard let commonName = profile.subject.commonName?.lowercased(), HostName.problem(with: commonName) == nil else { return sans }
        return sans + [.dns(commonName)]
    }

    /// Every (profile, name) outside any of `constraints` (those of the issuing CA's path), in profile order.
    public static func violations(_ profiles: [CertificateProfile], against constraints: [NameConstraints]) -> [Violation] {
        let checks = constraints.map(NameConstraintsCheck.init)
        guard !checks.isEmpty else { return [] }
        // Each distinct name is checked once: most recur (a host's names in each of its services'
        // certificates, `localhost` and the loopback addresses in all of them).
        var permitted: [GeneralName: Bool] = [:]
        var found: [Violation] = []
        for profile in profiles {
            for name in constrainedNames(of: profile) {
                let isPermitted = permitted[name] ?? {
                    let answer = checks.allSatisfy { $0.isPermitted(name) }
                    permitted[name] = answer
                    return answer
                }()
                if !isPermitted { found.append(Violation(profile: profile, name: name)) }
            }
        }
        return found
    }
}
