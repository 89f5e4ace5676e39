import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiPlatform

/// The cluster described by `cluster.yml` (SPEC §2), fully checked: every name valid, every
/// reference resolved, every default filled in. Build one with `Inventory.load(path:)` or
/// `Inventory.parse(yaml:path:)`; both throw `ChpkiError` naming file, line and field.
public struct Inventory: Sendable, Equatable {
    /// The file path as given, used in error messages.
    public var path: String
    /// Service discovery domain, lower-cased: service S answers as `S.<domain>`.
    public var domain: String
    /// DN attributes added to every node and admin certificate subject.
    public var subject: SubjectAttributes
    public var ca: CASettings
    public var defaults: Defaults
    /// In file order.
    public var hosts: [Host]
    /// In file order.
    public var vips: [VIP]
    /// In file order.
    public var services: [Service]
    public var admin: Admin

    public init(path: String, domain: String, subject: SubjectAttributes = SubjectAttributes(),
                ca: CASettings = CASettings(), defaults: Defaults = Defaults(), hosts: [Host],
                vips: [VIP] = [], services: [Service] = [], admin: Admin = Admin()) {
        self.path = path
        self.domain = domain
        self.subject = subject
        self.ca = ca
        self.defaults = defaults
        self.hosts = hosts
        self.vips = vips
        self.services = services
        self.admin = admin
    }

    /// Reads and checks the inventory file at `path`.
    public static func load(path: String) throws -> Inventory {
        let data = try InputFile.read(path, limit: ReadLimits.inventory, field: nil,
                                      missing: "no such inventory file (set --inventory or CHPKI_INVENTORY)")
        guard let text = String(data: data, encoding: .utf8) else {
            throw ChpkiError.input(.inventorySyntax, file: path, field: nil, "the inventory is not UTF-8 text")
        }
        return try parse(yaml: text, path: path)
    }

    /// Checks `yaml` as the contents of the inventory file `path`.
    public static func parse(yaml: String, path: String) throws -> Inventory {
        try InventoryReader(path: path).read(yaml: yaml)
    }

    /// The host with this FQDN (case-insensitive), or with this short name when it is unique.
    public func host(named name: String) -> Host? {
        let wanted = name.lowercased()
        if let host = hosts.first(where: { $0.name == wanted }) { return host }
        let short = hosts.filter { $0.shortName == wanted }
        return short.count == 1 ? short[0] : nil
    }

    public func service(named name: String) -> Service? {
        services.first { $0.name == name }
    }

    /// The hosts a service runs on, in the order of its `hostNames`.
    public func hosts(of service: Service) -> [Host] {
        // By a table of the hosts, not a search per name: a search made 1,000 hosts cost a million comparisons per service.
        let byName = Dictionary(hosts.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        return service.hostNames.compactMap { byName[$0] }
    }

    /// The VIP with this name as written or this FQDN.
    public func vip(named name: String) -> VIP? {
        let wanted = name.lowercased()
        return vips.first { $0.fqdn == wanted || $0.name.lowercased() == wanted }
    }

    /// Every distinct group named by a host, in first-seen order.
    public var groups: [String] {
        var seen = Set<String>()
        return hosts.flatMap(\.groups).filter { seen.insert($0).inserted }
    }

    /// Every IP of every host, then of every VIP, without duplicates, in file order.
    public var allIPs: [IPAddress] {
        var seen = Set<IPAddress>()
        return (hosts.flatMap(\.ips) + vips.flatMap(\.ips)).filter { seen.insert($0).inserted }
    }
}

/// One DN attribute, e.g. `("O", "Acme, Inc.")`; the value is unescaped.
public struct DNAttribute: Sendable, Hashable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The inventory's `subject`: DN attributes of node and admin certificates.
public struct SubjectAttributes: Sendable, Equatable {
    /// Two upper-case ASCII letters.
    public var c: String?
    public var st: String?
    public var l: String?
    public var o: String?
    public var ou: String?

    public init(c: String? = nil, st: String? = nil, l: String? = nil, o: String? = nil, ou: String? = nil) {
        self.c = c
        self.st = st
        self.l = l
        self.o = o
        self.ou = ou
    }

    /// The attributes in DN encoding order (C, ST, L, O, OU), skipping the absent ones. The CN goes
    /// after these; `nodes_dn` strings list the RDNs in the reverse order.
    public var encodingOrder: [DNAttribute] {
        [("C", c), ("ST", st), ("L", l), ("O", o), ("OU", ou)].compactMap { name, value in
            value.map { DNAttribute(name: name, value: $0) }
        }
    }

    public var isEmpty: Bool { encodingOrder.isEmpty }
}

/// The inventory's `ca` section; `nil` fields fall back to `init-ca` options and their defaults.
public struct CASettings: Sendable, Equatable {
    public static let defaultCommonName = "chpki Root CA"

    public var commonName: String
    public var key: KeyType?
    public var validity: Period?

    public init(commonName: String = CASettings.defaultCommonName, key: KeyType? = nil, validity: Period? = nil) {
        self.commonName = commonName
        self.key = key
        self.validity = validity
    }
}

/// The inventory's `defaults` section.
public struct Defaults: Sendable, Equatable {
    public static let key = KeyType.ecP256
    public static let validity = Period(amount: 397, unit: .days)
    public static let renewBefore = Period(amount: 30, unit: .days)

    public var key: KeyType
    public var validity: Period
    public var renewBefore: Period

    public init(key: KeyType = Defaults.key, validity: Period = Defaults.validity,
                renewBefore: Period = Defaults.renewBefore) {
        self.key = key
        self.validity = validity
        self.renewBefore = renewBefore
    }
}

/// One entry of `hosts`.
public struct Host: Sendable, Equatable {
    /// FQDN, lower-cased, inside the inventory domain.
    public var name: String
    /// The first label of `name`.
    public var shortName: String
    /// In file order; may be empty.
    public var ips: [IPAddress]
    /// In file order; may be empty.
    public var groups: [String]

    public init(name: String, ips: [IPAddress] = [], groups: [String] = []) {
        self.name = name
        self.shortName = String(name.split(separator: ".", maxSplits: 1).first ?? Substring(name))
        self.ips = ips
        self.groups = groups
    }
}

/// One entry of `vips`: a load-balanced name that the haproxy balancers terminate TLS for.
public struct VIP: Sendable, Equatable {
    /// As written in the file.
    public var name: String
    /// Lower-cased; `name.<domain>` unless `name` already ends with the domain.
    public var fqdn: String
    /// At least one.
    public var ips: [IPAddress]

    public init(name: String, fqdn: String, ips: [IPAddress]) {
        self.name = name
        self.fqdn = fqdn
        self.ips = ips
    }
}

/// How a service's `hosts:` was written.
public enum HostSelector: Sendable, Equatable {
    /// `hosts: backend`: every host with that group.
    case group(String)
    /// `hosts: [backend-1, backend-2.example.com]`: the names as written.
    case hosts([String])
}

/// One entry of `services`.
public struct Service: Sendable, Equatable {
    /// OpenSearch's security plugin cannot load Ed25519 keys; the default key for it is RSA.
    public static let openSearch = "opensearch"

    /// The service key, a DNS label: the service answers as `<name>.<domain>`.
    public var name: String
    public var hostSelector: HostSelector
    /// Resolved FQDNs of the hosts: file order of a `hosts:` list, or `hosts` order for a group.
    public var hostNames: [String]
    /// As written; nil when the file gives none.
    public var key: KeyType?
    /// `key`, else RSA-2048 for OpenSearch, else `defaults.key`.
    public var effectiveKey: KeyType
    /// As written; nil means `defaults.validity`.
    public var validity: Period?
    public var enableServer: Bool
    public var serverCertMode: CertMode
    public var enableClient: Bool
    public var clientCertMode: CertMode
    public var clientCN: ClientCN
    /// Full lower-cased names, the domain already appended.
    public var extraSAN: [String]
    /// MinIO's server pools (FQDNs, in MINIO_VOLUMES order); nil: one pool of every host (MinIOPools).
    public var pools: [[String]]?

    public init(name: String, hostSelector: HostSelector, hostNames: [String], key: KeyType? = nil,
                effectiveKey: KeyType, validity: Period? = nil, enableServer: Bool = true,
                serverCertMode: CertMode = .server, enableClient: Bool = true, clientCertMode: CertMode = .client,
                clientCN: ClientCN = .short, extraSAN: [String] = []) {
        self.name = name
        self.hostSelector = hostSelector
        self.hostNames = hostNames
        self.key = key
        self.effectiveKey = effectiveKey
        self.validity = validity
        self.enableServer = enableServer
        self.serverCertMode = serverCertMode
        self.enableClient = enableClient
        self.clientCertMode = clientCertMode
        self.clientCN = clientCN
        self.extraSAN = extraSAN
    }

    /// The default key of a service that names none.
    public static func defaultKey(for service: String, defaults: Defaults) -> KeyType {
        service == openSearch ? .rsa2048 : defaults.key
    }

    /// Key types a service cannot load, with the reason.
    public static func unsupportedKeyReason(service: String, key: KeyType) -> String? {
        if service == openSearch && key == .ed25519 {
            return "the OpenSearch security plugin cannot load Ed25519 keys; use rsa-2048 (or another RSA or EC key)"
        }
        return nil
    }
}

/// The inventory's `admin` section: the OpenSearch admin client certificate.
public struct Admin: Sendable, Equatable {
    public static let defaultName = "admin"

    /// CN of the admin certificate.
    public var name: String

    public init(name: String = Admin.defaultName) {
        self.name = name
    }
}
