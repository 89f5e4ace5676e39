import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// The certificates an inventory implies and the names each carries: minicluster's SAN rule for
/// server certificates, `service@host` client certificates, one certificate per VIP on each
/// balancer, and the OpenSearch admin certificate (SPEC §3, docs/issuance.md).
public enum NamingRules {
    public static let haproxyService = "haproxy"

    /// Every certificate the inventory implies, in a stable order.
    public static func profiles(for inventory: Inventory) -> [CertificateProfile] {
        var profiles: [CertificateProfile] = []
        for service in inventory.services {
            for host in inventory.hosts(of: service) {
                if service.enableServer {
                    if service.name == haproxyService {
                        profiles += inventory.vips.map { vipProfile(vip: $0, balancer: host, service: service, inventory: inventory) }
                    } else {
                        profiles.append(serverProfile(service: service, host: host, inventory: inventory))
                    }
                }
                if service.enableClient {
                    profiles.append(clientProfile(service: service, host: host, inventory: inventory))
                }
            }
        }
        if let admin = adminProfile(inventory: inventory) { profiles.append(admin) }
        return profiles
    }

    /// Inventory subject attributes (C, ST, L, O, OU) followed by the CN: the DN nodes_dn lists.
    public static func subject(commonName: String, inventory: Inventory?) -> DistinguishedName {
        let attributes = inventory?.subject.encodingOrder.map { DistinguishedName.Attribute($0.name, $0.value) } ?? []
        return DistinguishedName(attributes + [.init("CN", commonName)])
    }

    /// minicluster's rule: `S.<domain>`, short name, FQDN, extra SANs, localhost; the host's IPs and loopback.
    public static func serverNames(service: String, fqdn: String, ips: [IPAddress], extraNames: [String], domain: String?) -> [GeneralName] {
        var dns: [String] = []
        if let domain { dns.append("\(service).\(domain)") }
        let short = String(fqdn.prefix(while: { $0 != "." }))
        dns += [short, fqdn] + extraNames + ["localhost"]
        var addresses = ips.map(\.bytes) + [IPAddress.loopbackV4.bytes, IPAddress.loopbackV6.bytes]
        var seenNames = Set<String>()
        dns = dns.filter { seenNames.insert($0).inserted }
        var seenAddresses = Set<[UInt8]>()
        addresses = addresses.filter { seenAddresses.insert($0).inserted }
        return dns.map(GeneralName.dns) + addresses.map(GeneralName.ip)
    }

    package static func serverProfile(service: Service, host: Host, inventory: Inventory) -> CertificateProfile {
        CertificateProfile(
            identity: CertificateIdentity(kind: .server, host: host.name, service: service.name, name: host.name),
            subject: subject(commonName: host.name, inventory: inventory),
            subjectAlternativeNames: serverNames(service: service.name, fqdn: host.name, ips: host.ips,
                                                 extraNames: service.extraSAN, domain: inventory.domain),
            extendedKeyUsage: service.serverCertMode.extendedKeyUsage, keyType: service.effectiveKey,
            validity: service.validity ?? inventory.defaults.validity, renewBefore: inventory.defaults.renewBefore)
    }

    /// A VIP that haproxy terminates TLS for: the VIP's FQDN and its IPs, nothing of the balancer.
    package static func vipProfile(vip: VIP, balancer: Host, service: Service, inventory: Inventory) -> CertificateProfile {
        CertificateProfile(
            identity: CertificateIdentity(kind: .server, host: balancer.name, service: service.name, name: vip.fqdn),
            subject: subject(commonName: vip.fqdn, inventory: inventory),
            subjectAlternativeNames: [.dns(vip.fqdn)] + vip.ips.map { .ip($0.bytes) },
            extendedKeyUsage: service.serverCertMode.extendedKeyUsage, keyType: service.effectiveKey,
            validity: service.validity ?? inventory.defaults.validity, renewBefore: inventory.defaults.renewBefore)
    }

    package static func clientProfile(service: Service, host: Host, inventory: Inventory) -> CertificateProfile {
        let commonName = "\(service.name)@\(service.clientCN == .fqdn ? host.name : host.shortName)"
        return CertificateProfile(
            identity: CertificateIdentity(kind: .client, host: host.name, service: service.name, name: commonName),
            subject: DistinguishedName([.init("CN", commonName)]), subjectAlternativeNames: [],
            extendedKeyUsage: service.clientCertMode.extendedKeyUsage, keyType: service.effectiveKey,
            validity: service.validity ?? inventory.defaults.validity, renewBefore: inventory.defaults.renewBefore)
    }

    /// The OpenSearch admin certificate, when the inventory runs OpenSearch; its key type follows the service's.
    public static func adminProfile(inventory: Inventory, name: String? = nil) -> CertificateProfile? {
        guard let openSearch = inventory.service(named: Service.openSearch) else { return nil }
        let commonName = name ?? inventory.admin.name
        return CertificateProfile(
            identity: CertificateIdentity(kind: .admin, host: nil, service: Service.openSearch, name: commonName),
            subject: subject(commonName: commonName, inventory: inventory), subjectAlternativeNames: [],
            extendedKeyUsage: [.clientAuth], keyType: openSearch.effectiveKey,
            validity: openSearch.validity ?? inventory.defaults.validity, renewBefore: inventory.defaults.renewBefore)
    }
}
