import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// `--name-constraints auto` (SPEC §3): the CA that signs leaves may only certify names this
/// cluster uses, so a certificate for any other name fails every verifier.
///
/// Width, chosen for growth and for size (docs/growth.md):
/// - DNS: the inventory's domain as one subtree (`example.com` permits every name under it, so new
///   FQDNs, services and VIPs never need a new CA), `localhost`, and each host's short name exactly
///   (server certificates carry it, and a single label cannot be covered by any subtree but itself).
///   The short names are what makes a constraint grow with the cluster: about 15 bytes per host.
///   The OpenSearch admin name too (its certificate has no SAN, and JSSE checks a CN that is a host
///   name against the DNS subtrees).
/// - IP: the /24 of each IPv4 address and the /64 of each IPv6 one, plus 127.0.0.0/8 and ::1.
///   A network, not each address: a host added in a network the cluster already uses needs no new
///   IP subtree, and a constraint for 1,000 hosts in a few networks stays a few entries long. The
///   network is the cluster's own; a rogue certificate for an address outside it still fails.
/// Names given on top (live one-off certificates, a one-off being issued) are added exactly.
public enum NameConstraintsPolicy {
    public static let ipv4Prefix = 24
    public static let ipv6Prefix = 64

    public static func constraints(for inventory: Inventory, including extra: [GeneralName] = []) -> NameConstraints {
        var dns: [String] = [inventory.domain.lowercased(), "localhost"]
        // Host FQDNs, VIPs and extra SANs are under the domain (the inventory reader refuses others).
        dns += inventory.hosts.map { $0.shortName.lowercased() }
        // The OpenSearch admin certificate has no SAN: JSSE checks its CN (e.g. `admin`) as a DNS name.
        if let admin = NamingRules.adminProfile(inventory: inventory) {
            for case let .dns(name) in NameConstraintsCheck.constrainedNames(of: admin) { dns.append(name) }
        }
        var addresses = inventory.allIPs.map(\.bytes)
        let domainCheck = NameConstraintsCheck(NameConstraints(permitted: dns.map(GeneralName.dns)))
        for name in extra {
            switch name {
            case let .dns(value) where !domainCheck.isPermitted(name): dns.append(value.lowercased())
            case let .ip(bytes): addresses.append(bytes)
            default: break
            }
        }
        var permitted = unique(dns).map(GeneralName.dns)
        var networks = addresses.map { bytes in
            GeneralName.network(containing: bytes, prefixLength: bytes.count == 16 ? ipv6Prefix : ipv4Prefix)
        }
        networks += IPAddress.loopbackNetworks.map { GeneralName.network(containing: $0.address.bytes, prefixLength: $0.prefixLength) }
        permitted += unique(networks)
        return NameConstraints(permitted: permitted)
    }

    /// A one-line summary: every subtree up to a dozen, then counts (a 1,000-host list is no use on a terminal).
    public static func describe(_ constraints: NameConstraints) -> String {
        let names = constraints.permitted.map { name -> String in
            if case let .dns(value) = name { return value }
            return String(name.description.drop { $0 != ":" }.dropFirst())
        }
        guard names.count > 12 else { return names.joined(separator: ", ") }
        return names.prefix(8).joined(separator: ", ") + ", ... (\(names.count) subtrees)"
    }

    private static func unique<T: Hashable>(_ values: [T]) -> [T] {
        var seen = Set<T>()
        return values.filter { seen.insert($0).inserted }
    }
}
