import Foundation
import Yams
import ChpkiBase
import ChpkiModel
import ChpkiPlatform

/// Reads `cluster.yml` strictly (SPEC §2): walks the composed YAML tree by hand so that every
/// unknown key, wrong type, malformed name or address and dangling reference is reported with its
/// line and field, e.g. `cluster.yml:7: hosts[0].name: 'backend_1.example.com': label ...`.
struct InventoryReader {
    let path: String
    private var walker: YAMLWalker { YAMLWalker(path: path) }

    static let topKeys = ["domain", "subject", "ca", "defaults", "hosts", "ansible_inventory", "vips", "services", "admin"]
    static let subjectKeys = ["C", "ST", "L", "O", "OU"]
    static let caKeys = ["common_name", "key", "validity"]
    static let defaultsKeys = ["key", "validity", "renew_before"]
    static let hostKeys = ["name", "ips", "groups"]
    static let vipKeys = ["name", "ips"]
    static let serviceKeys = ["name", "hosts", "key", "validity", "enable_server", "server_cert_mode",
                              "enable_client", "client_cert_mode", "client_cn", "extra_san", MinIOPools.key]
    static let adminKeys = ["name"]

    /// Upper bound of X.520 name attributes (ub-common-name, ub-organization-name, ...).

    /// Hints for keys that minicluster's services.yml has but chpki's inventory spells differently.
    static let serviceHints = [
        "scheduling_group": "chpki uses hosts: <group> (or a list of host names) instead",
        "service_credentials": "write the credential attributes (enable_client, extra_san, ...) directly under the service",
        "num_instances": "list the hosts explicitly under hosts: instead",
    ]

    static let subjectHints = [
        "CN": "the CN is set per certificate (the host FQDN, or admin.name); subject takes C, ST, L, O, OU",
    ]

    /// A fixed start date for comparing periods of different units (`renew_before` vs `validity`).
    static let comparisonDate = Date(timeIntervalSince1970: 1_767_225_600) // 2026-01-01T00:00:00Z

    func read(yaml text: String) throws -> Inventory {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw walker.syntaxError(error, yaml: text)
        }
        guard let root, !walker.isNull(root) else {
            throw walker.error(.inventoryMissingField, line: 1, nil, "the inventory is empty; expected a mapping with at least domain and hosts")
        }
        let top = try walker.mapping(root, "", expected: "a mapping (domain:, hosts:, ...) at the top level")
        try walker.rejectUnknownKeys(top, allowed: Self.topKeys, parent: "")
        let entry = { (key: String) -> YAMLWalker.Entry? in top.first { $0.key == key } }
        /// An optional section: absent, or written with no value, means "use the defaults".
        let section = { (key: String) -> Node? in
            guard let found = entry(key), !walker.isNull(found.value) else { return nil }
            return found.value
        }

        guard let domainEntry = entry("domain") else {
            throw walker.error(.inventoryMissingField, root, "domain", "missing; expected the cluster's DNS domain, e.g. domain: example.com")
        }
        let domain = try readDomain(domainEntry.value)
        let subject = try section("subject").map(readSubject) ?? SubjectAttributes()
        let ca = try section("ca").map(readCA) ?? CASettings()
        let defaults = try section("defaults").map(readDefaults) ?? Defaults()

        let hosts = try readAllHosts(hostsEntry: entry("hosts"), ansibleEntry: section("ansible_inventory") == nil ? nil : entry("ansible_inventory"),
                                     root: root, domain: domain)
        let vips = try section("vips").map { try readVIPs($0, domain: domain, hosts: hosts) } ?? []
        let services = try section("services").map {
            try readServices($0, domain: domain, hosts: hosts, defaults: defaults)
        } ?? []
        let admin = try section("admin").map { try readAdmin($0, hosts: hosts) } ?? Admin()

        return Inventory(path: path, domain: domain, subject: subject, ca: ca, defaults: defaults, hosts: hosts,
                         vips: vips, services: services, admin: admin)
    }

    // MARK: - domain, subject, ca, defaults, admin

    private func readDomain(_ node: Node) throws -> String {
        let text = try walker.string(node, "domain", expected: "a DNS domain such as example.com")
        if let problem = HostName.problem(with: text) {
            throw walker.error(.inventoryInvalidName, node, "domain", "not a valid RFC 1123 domain: \(problem)")
        }
        return text.lowercased()
    }

    private func readSubject(_ node: Node) throws -> SubjectAttributes {
        let entries = try walker.mapping(node, "subject", expected: "a mapping of DN attributes (C, ST, L, O, OU)")
        try walker.rejectUnknownKeys(entries, allowed: Self.subjectKeys, parent: "subject", hints: Self.subjectHints)
        var subject = SubjectAttributes()
        for entry in entries {
            let field = "subject.\(entry.key)"
            let value = try walker.string(entry.value, field)
            try checkAttribute(value, type: entry.key, entry.value, field)
            if entry.key == "C" {
                subject.c = value.uppercased()
                continue
            }
            switch entry.key {
            case "ST": subject.st = value
            case "L": subject.l = value
            case "O": subject.o = value
            default: subject.ou = value
            }
        }
        return subject
    }

    /// A DN attribute value, by the one rule of `DNAttributeValue`.
    private func checkAttribute(_ value: String, type: String, _ node: Node, _ field: String) throws {
        if let reason = DNAttributeValue.problem(type: type, value: value) { throw walker.error(.inventoryInvalidValue, node, field, reason) }
    }

    private func readCA(_ node: Node) throws -> CASettings {
        let entries = try walker.mapping(node, "ca", expected: "a mapping (common_name, key, validity)")
        try walker.rejectUnknownKeys(entries, allowed: Self.caKeys, parent: "ca")
        var ca = CASettings()
        for entry in entries {
            let field = "ca.\(entry.key)"
            switch entry.key {
            case "common_name":
                let value = try walker.string(entry.value, field)
                try checkAttribute(value, type: "CN", entry.value, field)
                ca.commonName = value
            case "key": ca.key = try readKey(entry.value, field)
            default: ca.validity = try readPeriod(entry.value, field)
            }
        }
        return ca
    }

    private func readDefaults(_ node: Node) throws -> Defaults {
        let entries = try walker.mapping(node, "defaults", expected: "a mapping (key, validity, renew_before)")
        try walker.rejectUnknownKeys(entries, allowed: Self.defaultsKeys, parent: "defaults")
        var defaults = Defaults()
        var periodNode: Node?
        for entry in entries {
            let field = "defaults.\(entry.key)"
            switch entry.key {
            case "key":
                defaults.key = try readKey(entry.value, field)
            case "validity":
                defaults.validity = try readPeriod(entry.value, field)
                periodNode = periodNode ?? entry.value
            default:
                defaults.renewBefore = try readPeriod(entry.value, field)
                periodNode = entry.value
            }
        }
        if !isShorter(defaults.renewBefore, than: defaults.validity) {
            throw walker.error(.inventoryInvalidValue, periodNode, "defaults.renew_before",
                               "renew_before (\(defaults.renewBefore)) must be shorter than validity (\(defaults.validity))")
        }
        return defaults
    }

    private func readAdmin(_ node: Node, hosts: [Host]) throws -> Admin {
        let entries = try walker.mapping(node, "admin", expected: "a mapping (name)")
        try walker.rejectUnknownKeys(entries, allowed: Self.adminKeys, parent: "admin")
        var admin = Admin()
        for entry in entries {
            let value = try walker.string(entry.value, "admin.name")
            try checkAttribute(value, type: "CN", entry.value, "admin.name")
            if let host = hosts.first(where: { $0.name == value.lowercased() }) {
                throw walker.error(.inventoryConflict, entry.value, "admin.name",
                                   "'\(value)' is the name of host \(host.name); the admin certificate must not look like a node (nodes_dn)")
            }
            admin.name = value
        }
        return admin
    }

    // MARK: - scalars

    private func readKey(_ node: Node, _ field: String) throws -> KeyType {
        let text = try walker.string(node, field, expected: "a key type (\(KeyType.allNames))")
        guard let key = KeyType(rawValue: text.lowercased()) else {
            throw walker.error(.inventoryInvalidValue, node, field, "unknown key type '\(text)'; expected one of \(KeyType.allNames)")
        }
        return key
    }

    private func readPeriod(_ node: Node, _ field: String) throws -> Period {
        let text = try walker.string(node, field, expected: "a period (\(Period.help))")
        guard let period = Period(text) else {
            throw walker.error(.inventoryInvalidValue, node, field, "'\(text)' is not a period: expected \(Period.help)")
        }
        return period
    }

    private func readEnum<T: RawRepresentable & CaseIterable>(_ node: Node, _ field: String, _ type: T.Type) throws -> T
    where T.RawValue == String {
        let names = T.allCases.map(\.rawValue).joined(separator: ", ")
        let text = try walker.string(node, field, expected: "one of \(names)")
        guard let value = T(rawValue: text.lowercased()) else {
            throw walker.error(.inventoryInvalidValue, node, field, "'\(text)' is not one of \(names)")
        }
        return value
    }

    private func isShorter(_ a: Period, than b: Period) -> Bool {
        a.after(Self.comparisonDate) < b.after(Self.comparisonDate)
    }

    // MARK: - hosts

    /// `hosts:` and the hosts of `ansible_inventory:`, together, checked by the same rules: a name,
    /// short name or IP that both give is refused like one given twice in `hosts:`.
    private func readAllHosts(hostsEntry: YAMLWalker.Entry?, ansibleEntry: YAMLWalker.Entry?, root: Node, domain: String) throws -> [Host] {
        guard hostsEntry != nil || ansibleEntry != nil else {
            throw walker.error(.inventoryMissingField, root, "hosts", "missing; expected a list of hosts (- name: FQDN, ips: [...], groups: [...]) or ansible_inventory: FILE")
        }
        var drafts: [HostDraft] = []
        if let hostsEntry, !(ansibleEntry != nil && walker.isNull(hostsEntry.value)) {
            drafts += try readHosts(hostsEntry.value, domain: domain, allowEmpty: ansibleEntry != nil)
        }
        if let ansibleEntry {
            let file = try walker.string(ansibleEntry.value, "ansible_inventory", expected: "the path of an Ansible inventory (relative to this file)")
            let source = AnsibleInventory(file: file, relativeTo: path,
                                          errorInCluster: { walker.error($0, ansibleEntry.value, "ansible_inventory", $1) })
            let ansibleDrafts = try source.hosts()
            if ansibleDrafts.isEmpty {
                throw walker.error(.inventoryMissingField, ansibleEntry.value, "ansible_inventory", "\(source.path) has no hosts")
            }
            drafts += ansibleDrafts
        }
        return try HostListChecker(domain: domain).check(drafts)
    }

    private func readHosts(_ node: Node, domain: String, allowEmpty: Bool) throws -> [HostDraft] {
        let expected = "a list of hosts (- name: FQDN, ips: [...], groups: [...])"
        let items = try walker.sequence(node, "hosts", expected: expected)
        if items.isEmpty && !allowEmpty {
            throw walker.error(.inventoryMissingField, node, "hosts", "the list is empty; expected at least one host")
        }
        var drafts: [HostDraft] = []
        for (index, item) in items.enumerated() {
            let field = "hosts[\(index)]"
            let entries = try walker.mapping(item, field, expected: "a host (name: FQDN, ips: [...], groups: [...])")
            try walker.rejectUnknownKeys(entries, allowed: Self.hostKeys, parent: field)
            guard let nameEntry = entries.first(where: { $0.key == "name" }) else {
                throw walker.error(.inventoryMissingField, item, "\(field).name", "missing; expected the host's FQDN, e.g. name: backend-1.\(domain)")
            }
            let name = try walker.string(nameEntry.value, "\(field).name", expected: "the host's FQDN")
            var ips: [(String, Node)] = []
            var ipsNode: Node?
            if let ipsEntry = entries.first(where: { $0.key == "ips" }), !walker.isNull(ipsEntry.value) {
                ips = try walker.stringList(ipsEntry.value, "\(field).ips", expected: "a list of IP addresses")
                ipsNode = ipsEntry.value
            }
            var groups: [(String, Node)] = []
            if let groupsEntry = entries.first(where: { $0.key == "groups" }), !walker.isNull(groupsEntry.value) {
                groups = try walker.stringList(groupsEntry.value, "\(field).groups", expected: "a list of group names")
            }
            let walker = self.walker
            drafts.append(HostDraft(name: name, ips: ips.map(\.0), groups: groups.map(\.0), label: field) { code, part, reason in
                switch part {
                case .name: return walker.error(code, nameEntry.value, "\(field).name", reason)
                case let .ip(i): return walker.error(code, i < ips.count ? ips[i].1 : ipsNode, "\(field).ips[\(i)]", reason)
                case let .group(i): return walker.error(code, i < groups.count ? groups[i].1 : item, "\(field).groups[\(i)]", reason)
                }
            })
        }
        return drafts
    }

    /// A list of addresses, each valid and listed once.
    private func readIPs(_ node: Node, _ field: String) throws -> [IPAddress] {
        let items = try walker.stringList(node, field, expected: "a list of IP addresses")
        var ips: [IPAddress] = []
        for (index, (text, itemNode)) in items.enumerated() {
            guard let ip = IPAddress(text) else {
                throw walker.error(.inventoryInvalidAddress, itemNode, "\(field)[\(index)]", IPAddress.problem(with: text) ?? "not an IP address")
            }
            if ips.contains(ip) {
                throw walker.error(.inventoryDuplicate, itemNode, "\(field)[\(index)]", "\(ip) is listed twice")
            }
            ips.append(ip)
        }
        return ips
    }

    // MARK: - vips

    private func readVIPs(_ node: Node, domain: String, hosts: [Host]) throws -> [VIP] {
        let items = try walker.sequence(node, "vips", expected: "a list of VIPs (- name: NAME, ips: [...])")
        var vips: [VIP] = []
        for (index, item) in items.enumerated() {
            let field = "vips[\(index)]"
            let entries = try walker.mapping(item, field, expected: "a VIP (name: NAME, ips: [...])")
            try walker.rejectUnknownKeys(entries, allowed: Self.vipKeys, parent: field)
            guard let nameEntry = entries.first(where: { $0.key == "name" }) else {
                throw walker.error(.inventoryMissingField, item, "\(field).name", "missing; expected the VIP's name, e.g. name: cinc-server-cluster")
            }
            let name = try walker.string(nameEntry.value, "\(field).name", expected: "the VIP's name")
            let fqdn = try qualify(name, nameEntry.value, "\(field).name", domain: domain)
            if let other = vips.firstIndex(where: { $0.fqdn == fqdn }) {
                throw walker.error(.inventoryDuplicate, nameEntry.value, "\(field).name", "duplicate VIP \(fqdn) (also vips[\(other)])")
            }
            if let host = hosts.first(where: { $0.name == fqdn }) {
                throw walker.error(.inventoryConflict, nameEntry.value, "\(field).name", "\(fqdn) is the name of a host (\(host.name)); a VIP needs its own name")
            }
            guard let ipsEntry = entries.first(where: { $0.key == "ips" }) else {
                throw walker.error(.inventoryMissingField, item, "\(field).ips", "missing; expected the VIP's addresses, e.g. ips: [10.0.0.100]")
            }
            let ips = try readIPs(ipsEntry.value, "\(field).ips")
            if ips.isEmpty {
                throw walker.error(.inventoryMissingField, ipsEntry.value, "\(field).ips", "the list is empty; a VIP needs at least one address")
            }
            for (ipIndex, ip) in ips.enumerated() {
                if let host = hosts.first(where: { $0.ips.contains(ip) }) {
                    throw walker.error(.inventoryConflict, ipsEntry.value.sequence.map { Array($0)[ipIndex] }, "\(field).ips[\(ipIndex)]",
                                       "\(ip) is an address of host \(host.name); a VIP address must not be a host's")
                }
            }
            vips.append(VIP(name: name, fqdn: fqdn, ips: ips))
        }
        return vips
    }

    /// `name.<domain>` unless `name` already is the domain or ends with it; the result must be a valid name.
    private func qualify(_ name: String, _ node: Node, _ field: String, domain: String) throws -> String {
        if let problem = HostName.problem(with: name) {
            throw walker.error(.inventoryInvalidName, node, field, "not a valid RFC 1123 name: \(problem)")
        }
        let lower = name.lowercased()
        let fqdn = HostName.name(lower, isWithin: domain) ? lower : "\(lower).\(domain)"
        if fqdn.utf8.count > HostName.maxLength {
            throw walker.error(.inventoryInvalidName, node, field, "'\(fqdn)' (with the domain appended) is longer than \(HostName.maxLength) characters")
        }
        return fqdn
    }

    // MARK: - services

    private func readServices(_ node: Node, domain: String, hosts: [Host], defaults: Defaults) throws -> [Service] {
        let entries = try walker.mapping(node, "services", expected: "a mapping of service name to its settings (opensearch: { hosts: backend })")
        var services: [Service] = []
        for entry in entries {
            services.append(try readService(entry, domain: domain, hosts: hosts, defaults: defaults))
        }
        return services
    }

    private func readService(_ serviceEntry: YAMLWalker.Entry, domain: String, hosts: [Host], defaults: Defaults) throws -> Service {
        let name = serviceEntry.key
        let field = "services.\(name)"
        try checkServiceName(name, serviceEntry.keyNode, field)
        let fqdn = "\(name).\(domain)"
        if let host = hosts.first(where: { $0.name == fqdn }) {
            throw walker.error(.inventoryConflict, serviceEntry.keyNode, field,
                               "the service name \(fqdn) is also the name of host \(host.name); rename one of them")
        }
        if walker.isNull(serviceEntry.value) {
            throw walker.error(.inventoryWrongType, serviceEntry.value, field, "expected the service's settings, at least hosts: <group or list of hosts>")
        }
        let entries = try walker.mapping(serviceEntry.value, field, expected: "the service's settings (hosts: ..., key: ..., ...)")
        try walker.rejectUnknownKeys(entries, allowed: Self.serviceKeys, parent: field, hints: Self.serviceHints)

        guard let hostsEntry = entries.first(where: { $0.key == "hosts" }) else {
            throw walker.error(.inventoryMissingField, serviceEntry.value, "\(field).hosts", "missing; expected a group name or a list of host names")
        }
        let (selector, hostNames) = try resolveHosts(hostsEntry.value, "\(field).hosts", hosts: hosts)

        var service = Service(name: name, hostSelector: selector, hostNames: hostNames,
                              effectiveKey: Service.defaultKey(for: name, defaults: defaults))
        for entry in entries {
            let keyField = "\(field).\(entry.key)"
            switch entry.key {
            case "hosts":
                continue
            case "name":
                let written = try walker.string(entry.value, keyField)
                if written != name {
                    throw walker.error(.inventoryConflict, entry.value, keyField,
                                       "'\(written)' differs from the service key '\(name)'; drop name: or make them equal")
                }
            case "key":
                let key = try readKey(entry.value, keyField)
                if let reason = Service.unsupportedKeyReason(service: name, key: key) {
                    throw walker.error(.inventoryInvalidValue, entry.value, keyField, "\(key.rawValue) is not allowed: \(reason)")
                }
                service.key = key
                service.effectiveKey = key
            case "validity":
                let validity = try readPeriod(entry.value, keyField)
                if !isShorter(defaults.renewBefore, than: validity) {
                    throw walker.error(.inventoryInvalidValue, entry.value, keyField,
                                       "validity (\(validity)) must be longer than defaults.renew_before (\(defaults.renewBefore))")
                }
                service.validity = validity
            case "enable_server": service.enableServer = try walker.bool(entry.value, keyField)
            case "enable_client": service.enableClient = try walker.bool(entry.value, keyField)
            case "server_cert_mode": service.serverCertMode = try readEnum(entry.value, keyField, CertMode.self)
            case "client_cert_mode": service.clientCertMode = try readEnum(entry.value, keyField, CertMode.self)
            case "client_cn": service.clientCN = try readEnum(entry.value, keyField, ClientCN.self)
            case MinIOPools.key:
                service.pools = try readPools(entry.value, keyField, service: name, hostNames: hostNames, hosts: hosts)
            default: // extra_san
                service.extraSAN = try readExtraSAN(entry.value, keyField, domain: domain)
            }
        }
        return service
    }

    /// `pools:` of the minio service: lists of its hosts, each host in exactly one pool, every
    /// pool one MinIO can make and grow by (MinIOPools.problem).
    private func readPools(_ node: Node, _ field: String, service: String, hostNames: [String], hosts: [Host]) throws -> [[String]] {
        guard service == "minio" else {
            throw walker.error(.inventoryInvalidValue, node, field, "only the minio service has server pools")
        }
        let items = try walker.sequence(node, field, expected: "a list of pools, each a list of host names ([[backend-1, backend-2, ...], [...]])")
        guard !items.isEmpty else { throw walker.error(.inventoryInvalidValue, node, field, "the list is empty; leave pools out for one pool of every host") }
        var pools: [[String]] = []
        var seen: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            let poolField = "\(field)[\(index)]"
            let (_, names) = try resolveHosts(item, poolField, hosts: hosts, listOnly: true)
            for (position, name) in names.enumerated() {
                guard hostNames.contains(name) else {
                    throw walker.error(.inventoryInvalidValue, item, "\(poolField)[\(position)]", "\(name) is not a host of the minio service")
                }
                if let other = seen[name] {
                    throw walker.error(.inventoryInvalidValue, item, "\(poolField)[\(position)]", "\(name) is already in pools[\(other)]; a server is in one pool")
                }
                seen[name] = index
            }
            if let problem = MinIOPools.problem(pool: index, servers: names, firstPool: pools.first?.count ?? names.count) {
                throw walker.error(.inventoryInvalidValue, item, poolField, problem)
            }
            pools.append(names)
        }
        if let missing = hostNames.first(where: { seen[$0] == nil }) {
            let first = pools.first?.count ?? 0
            throw walker.error(.inventoryInvalidValue, node, field, "\(missing) runs minio but is in no pool: MinIO grows by whole pools; "
                               + "add it to a new pool of at least \(MinIOPools.minimumNewPool(firstPool: first)) servers")
        }
        return pools
    }

    /// Service names become DNS labels (`S.<domain>`) and directory names: `ServiceName`'s rule.
    private func checkServiceName(_ name: String, _ node: Node, _ field: String) throws {
        if let reason = ServiceName.problem(with: name) { throw walker.error(.inventoryInvalidName, node, field, reason) }
    }

    /// `hosts:` of a service: a group that some host has, or a list of existing hosts (FQDN or
    /// unique short name), resolved to FQDNs.
    private func resolveHosts(_ node: Node, _ field: String, hosts: [Host], listOnly: Bool = false) throws -> (HostSelector, [String]) {
        if !listOnly, case .scalar = node, !walker.isNull(node) {
            let group = try walker.string(node, field)
            let members = hosts.filter { $0.groups.contains(group) }.map(\.name)
            if members.isEmpty {
                var reason = "no host is in group '\(group)'"
                var seen = Set<String>()
                let groups = hosts.flatMap(\.groups).filter { seen.insert($0).inserted }
                reason += groups.isEmpty ? " (no host lists any groups)" : " (known groups: \(groups.joined(separator: ", ")))"
                if hosts.contains(where: { $0.name == group.lowercased() || $0.shortName == group.lowercased() }) {
                    reason += "; to name hosts, write a list: [\(group)]"
                }
                throw walker.error(.inventoryUnknownGroup, node, field, reason)
            }
            return (.group(group), members)
        }
        let items = try walker.stringList(node, field, expected: "a group name or a list of host names")
        if items.isEmpty {
            throw walker.error(.inventoryMissingField, node, field, "the list is empty; a service needs at least one host")
        }
        var names: [String] = []
        for (index, (text, itemNode)) in items.enumerated() {
            let wanted = text.lowercased()
            let host = hosts.first(where: { $0.name == wanted })
                ?? (wanted.contains(".") ? nil : hosts.first(where: { $0.shortName == wanted }))
            guard let host else {
                let known = hosts.map(\.name)
                let shown = known.count > 20 ? known.prefix(20).joined(separator: ", ") + ", ..." : known.joined(separator: ", ")
                throw walker.error(.inventoryUnknownHost, itemNode, "\(field)[\(index)]", "unknown host '\(text)' (known hosts: \(shown))")
            }
            if names.contains(host.name) {
                throw walker.error(.inventoryDuplicate, itemNode, "\(field)[\(index)]", "host \(host.name) is listed twice")
            }
            names.append(host.name)
        }
        return (.hosts(items.map(\.0)), names)
    }

    private func readExtraSAN(_ node: Node, _ field: String, domain: String) throws -> [String] {
        let items = try walker.stringList(node, field, expected: "a list of names (the domain is appended)")
        var names: [String] = []
        for (index, (text, itemNode)) in items.enumerated() {
            let fqdn = try qualify(text, itemNode, "\(field)[\(index)]", domain: domain)
            if names.contains(fqdn) {
                throw walker.error(.inventoryDuplicate, itemNode, "\(field)[\(index)]", "\(fqdn) is listed twice")
            }
            names.append(fqdn)
        }
        return names
    }
}
