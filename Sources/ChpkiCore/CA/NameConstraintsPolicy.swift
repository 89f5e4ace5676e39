import Foundation

/// `--name-constraints auto`: the root may only certify names this cluster uses (SPEC §3): the
/// inventory's domain, the networks of its IPs, and localhost/loopback.
public enum NameConstraintsPolicy {
    /// IPv4 hosts are constrained to their /24, IPv6 hosts to their /64.
    public static let ipv4Prefix = 24
    public static let ipv6Prefix = 64

    public static func constraints(for inventory: Inventory) -> NameConstraints {
        var dns: [String] = [inventory.domain, "localhost"]
        // A server certificate carries the host's short name (minicluster's SAN rule), which is not
        // under the domain: without its own subtree, every node certificate would violate the constraint.
        // (Host FQDNs, VIPs and extra SANs are under the domain: the inventory reader refuses others.)
        dns += inventory.hosts.map(\.shortName)
        var permitted = unique(dns).map(GeneralName.dns)
        var networks: [GeneralName] = []
        for address in inventory.allIPs {
            networks.append(.network(containing: address.bytes, prefixLength: address.isV6 ? ipv6Prefix : ipv4Prefix))
        }
        networks.append(.network(containing: [127, 0, 0, 1], prefixLength: 8))
        networks.append(.network(containing: [UInt8](repeating: 0, count: 15) + [1], prefixLength: 128))
        permitted += unique(networks)
        return NameConstraints(permitted: permitted)
    }

    private static func unique<T: Hashable>(_ values: [T]) -> [T] {
        var seen = Set<T>()
        return values.filter { seen.insert($0).inserted }
    }
}
