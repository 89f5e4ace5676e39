import ChpkiBase
import ChpkiModel
import ChpkiPlatform

/// One host as a source wrote it, before the checks: an entry of `cluster.yml`'s `hosts:` or a
/// host of the Ansible inventory that `ansible_inventory:` names.
struct HostDraft {
    enum Part {
        case name
        case ip(Int)
        case group(Int)
    }

    var name: String
    var ips: [String]
    var groups: [String]
    /// How other hosts' errors name this one: `hosts[2]`, or `host db-1.example.com of hosts.yml`.
    var label: String
    /// The error for `reason` at `part` of this host, located in its own file (line, field).
    var error: (ChpkiError.Code, Part, String) -> ChpkiError
}

/// The rules of SPEC §2 for the hosts of an inventory, wherever they were written: each name a
/// fully qualified RFC 1123 name under the domain, names, short names and IPs unique across all
/// hosts, every IP valid, group names well-formed. One checker for `hosts:` and Ansible inventories.
struct HostListChecker {
    let domain: String

    func check(_ drafts: [HostDraft]) throws -> [Host] {
        var hosts: [Host] = []
        var nameIndex: [String: Int] = [:]
        var shortIndex: [String: Int] = [:]
        var ipOwner: [IPAddress: Int] = [:]
        for (index, draft) in drafts.enumerated() {
            let name = try fqdn(draft)
            if let previous = nameIndex[name] {
                throw draft.error(.inventoryDuplicate, .name, "duplicate host \(name) (also \(drafts[previous].label))")
            }
            var host = Host(name: name)
            if let previous = shortIndex[host.shortName] {
                throw draft.error(.inventoryDuplicate, .name, "short name '\(host.shortName)' is also the short name of \(drafts[previous].label) (\(hosts[previous].name)); short names must be unique")
            }
            nameIndex[name] = index
            shortIndex[host.shortName] = index
            host.ips = try ips(draft)
            for (ipIndex, ip) in host.ips.enumerated() {
                if let owner = ipOwner[ip] {
                    throw draft.error(.inventoryDuplicate, .ip(ipIndex), "\(ip) is already an address of \(drafts[owner].label) (\(hosts[owner].name)); host IPs must be unique")
                }
                ipOwner[ip] = index
            }
            host.groups = try groups(draft)
            hosts.append(host)
        }
        return hosts
    }

    /// A host name: a valid FQDN of at least two labels, inside the inventory domain.
    private func fqdn(_ draft: HostDraft) throws -> String {
        let text = draft.name
        if let problem = HostName.problem(with: text) {
            throw draft.error(.inventoryInvalidName, .name, "not a valid RFC 1123 host name: \(problem)")
        }
        let name = text.lowercased()
        if !name.contains(".") {
            throw draft.error(.inventoryInvalidName, .name, "'\(text)' is not fully qualified; write the FQDN, e.g. \(name).\(domain)")
        }
        if name == domain || !HostName.name(name, isWithin: domain) {
            throw draft.error(.inventoryInvalidName, .name, "'\(text)' is not a host name under the domain \(domain)")
        }
        return name
    }

    /// A list of addresses, each valid and listed once.
    private func ips(_ draft: HostDraft) throws -> [IPAddress] {
        var ips: [IPAddress] = []
        for (index, text) in draft.ips.enumerated() {
            guard let ip = IPAddress(text) else {
                throw draft.error(.inventoryInvalidAddress, .ip(index), IPAddress.problem(with: text) ?? "not an IP address")
            }
            if ips.contains(ip) {
                throw draft.error(.inventoryDuplicate, .ip(index), "\(ip) is listed twice")
            }
            ips.append(ip)
        }
        return ips
    }

    private func groups(_ draft: HostDraft) throws -> [String] {
        var groups: [String] = []
        for (index, text) in draft.groups.enumerated() {
            let valid = !text.isEmpty && text.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "."
            }
            guard valid else {
                throw draft.error(.inventoryInvalidName, .group(index), "'\(text)' is not a group name: use letters, digits, '-', '_' and '.'")
            }
            if groups.contains(text) {
                throw draft.error(.inventoryDuplicate, .group(index), "group '\(text)' is listed twice")
            }
            groups.append(text)
        }
        return groups
    }
}
