import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Profiles for `issue server|client|admin`: the inventory's rules applied to names given on the
/// command line, each checked as strictly as the inventory's.
public enum OneOffProfiles {
    public static func server(service: String, host: String, ips: [String], sans: [String], keyType: KeyType?, mode: CertMode?,
                              inventory: Inventory?) throws -> CertificateProfile {
        try checkServiceName(service)
        let fqdn = host.lowercased()
        if let problem = HostName.problem(with: fqdn) { throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--host", problem) }
        let addresses = try ips.map { text -> IPAddress in
            guard let address = IPAddress(text) else {
                throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--ip", IPAddress.problem(with: text) ?? "'\(text)' is not an IP address")
            }
            return address
        }
        let extra = try sans.map { name -> String in
            let lowered = name.lowercased()
            if let problem = HostName.problem(with: lowered) { throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--san", problem) }
            return lowered
        }
        let configured = inventory?.service(named: service)
        let key = keyType ?? configured?.effectiveKey ?? Service.defaultKey(for: service, defaults: inventory?.defaults ?? Defaults())
        try checkLoadable(service: service, key: key)
        return CertificateProfile(
            identity: CertificateIdentity(kind: .server, host: fqdn, service: service, name: fqdn),
            subject: NamingRules.subject(commonName: fqdn, inventory: inventory),
            subjectAlternativeNames: NamingRules.serverNames(service: service, fqdn: fqdn, ips: addresses, extraNames: extra,
                                                             domain: inventory?.domain),
            extendedKeyUsage: (mode ?? configured?.serverCertMode ?? .server).extendedKeyUsage, keyType: key,
            validity: configured?.validity ?? inventory?.defaults.validity ?? Defaults.validity,
            renewBefore: inventory?.defaults.renewBefore ?? Defaults.renewBefore)
    }

    public static func client(name: String, keyType: KeyType?, inventory: Inventory?) throws -> CertificateProfile {
        let parts = name.split(separator: "@", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 else {
            throw ChpkiError.input(.usageInvalidValue, file: nil, field: "service@host", "'\(name)' must be SERVICE@HOST, e.g. patroni@backend-1")
        }
        let service = parts[0]
        let host = parts[1].lowercased()
        try checkServiceName(service)
        if let problem = HostName.problem(with: host) { throw ChpkiError.input(.usageInvalidValue, file: nil, field: "service@host", problem) }
        let configured = inventory?.service(named: service)
        let key = keyType ?? configured?.effectiveKey ?? Service.defaultKey(for: service, defaults: inventory?.defaults ?? Defaults())
        try checkLoadable(service: service, key: key)
        let commonName = "\(service)@\(host)"
        return CertificateProfile(
            identity: CertificateIdentity(kind: .client, host: inventory?.host(named: host)?.name ?? host, service: service, name: commonName),
            subject: DistinguishedName([.init("CN", commonName)]), subjectAlternativeNames: [],
            extendedKeyUsage: (configured?.clientCertMode ?? .client).extendedKeyUsage, keyType: key,
            validity: configured?.validity ?? inventory?.defaults.validity ?? Defaults.validity,
            renewBefore: inventory?.defaults.renewBefore ?? Defaults.renewBefore)
    }

    public static func admin(name: String?, inventory: Inventory) throws -> CertificateProfile {
        if let name, name.isEmpty || name.count > 64 {
            throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--name", "the admin name must be 1 to 64 characters")
        }
        guard let profile = NamingRules.adminProfile(inventory: inventory, name: name) else {
            throw ChpkiError.input(.inventoryUnknownService, file: inventory.path, field: "services", "there is no opensearch service, so no admin certificate")
        }
        let nodes = try NodesDN(inventory: inventory)
        let admin = OpenSearchDN.string(profile.subject)
        if let node = nodes.nodesDN.first(where: { OpenSearchDN.matches(pattern: $0, admin) }) {
            throw ChpkiError.input(.issueAdminIsNode, file: nil, field: "--name", "the admin DN \(admin) is matched by the nodes_dn entry \(node)")
        }
        return profile
    }

    static func checkServiceName(_ service: String) throws {
        if let reason = ServiceName.problem(with: service) { throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--service", reason) }
    }

    static func checkLoadable(service: String, key: KeyType) throws {
        if let reason = Service.unsupportedKeyReason(service: service, key: key) {
            throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--key", reason)
        }
    }
}
