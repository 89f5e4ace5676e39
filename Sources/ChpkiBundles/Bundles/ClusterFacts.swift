import ChpkiBase
import ChpkiCA
import ChpkiInventory
import ChpkiModel
import ChpkiSecretBundles
import Foundation

/// What every host's layout shares, computed once per `chpki bundle` run: the CA's certificates,
/// the identity -> leaf map, which hosts run which service. Laying out a host only looks things
/// up here, so the cost of a run grows linearly with the number of hosts.
public struct ClusterFacts: @unchecked Sendable {  // Templates is a plain value; nothing here mutates after init
    public let inventory: Inventory
    public let flavor: FrontendFlavor
    let templates: Templates
    let inputs: BundleInputs
    /// The root(s): the content of every trust file (`root-ca.pem`, MinIO's `CAs/root-ca.crt`, anchors).
    public let rootPEM: Data
    /// The roots, then the intermediates: for files that must hold the whole trust path (etcd's ca.pem).
    public let caBundlePEM: Data
    private let hostsByService: [String: [Host]]
    /// What each host last installed (the install records): who is already a member of a cluster.
    public let installed: InstalledServices

    public init(inventory: Inventory, inputs: BundleInputs, templates: Templates, flavor: FrontendFlavor,
                installed: InstalledServices = .none) {
        self.inventory = inventory
        self.installed = installed
        self.inputs = inputs
        self.templates = templates
        self.flavor = flavor
        rootPEM = inputs.roots.reduce(Data(), +)
        caBundlePEM = rootPEM + inputs.intermediates.map(\.pem).reduce(Data(), +)
        let hostsByName = Dictionary(inventory.hosts.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        hostsByService = Dictionary(inventory.services.map { service in (service.name, service.hostNames.compactMap { hostsByName[$0] }) },
                                    uniquingKeysWith: { first, _ in first })
    }

    /// The hosts a service runs on, in the order of its `hosts:`.
    public func hosts(of service: Service) -> [Host] { hostsByService[service.name] ?? [] }

    /// The intermediates' PEMs, by serial.
    public var intermediates: [Data] { inputs.intermediates.map(\.pem) }

    public var caSHA256: String { inputs.caSHA256 }
    public var caCreated: Date { inputs.caCreated }

    public func leaf(_ identity: CertificateIdentity) throws -> BundleInputs.Leaf {
        guard let leaf = inputs.leaves[identity] else {
            throw ChpkiError.input(.bundleNotIssued, file: inventory.path, field: identity.host ?? identity.name,
                                   "no valid \(identity.kind.rawValue) certificate for \(identity.service ?? "") '\(identity.name)' in the CA: run 'chpki issue' first")
        }
        return leaf
    }

    public func server(_ service: Service, _ host: Host) throws -> BundleInputs.Leaf {
        try leaf(NamingRules.serverProfile(service: service, host: host, inventory: inventory).identity)
    }

    public func client(_ service: Service, _ host: Host) throws -> BundleInputs.Leaf {
        try leaf(NamingRules.clientProfile(service: service, host: host, inventory: inventory).identity)
    }

    /// A config snippet from `templates/`.
    public func render(_ name: String, _ context: [String: Any]) throws -> Data {
        try templates.render(name, context)
    }

    /// The address a host's services listen on and advertise: its first IP, else its name.
    public static func address(of host: Host) -> String { host.ips.first?.description ?? host.name }

    /// Whether a snippet's address is loopback (`IPAddress.isLoopback`), or the name localhost.
    public static func isLoopback(_ address: String) -> Bool {
        IPAddress(address)?.isLoopback ?? (address == "localhost")
    }
}

/// What every host of one service shares, prepared once per run by its descriptor: the cluster part
/// of the snippets' context (member lists, nodes_dn, ...) and anything else looked up per host.
public struct ServiceFacts: @unchecked Sendable {  // read-only after prepare
    /// Merged under each host's own values when a snippet is rendered.
    public var context: [String: Any] = [:]
    /// Per-host data shared by the layout of every host (e.g. MinIO peers' certificates), by FQDN.
    public var perHost: [String: Data] = [:]
    /// etcd's members, joiners and leavers (EtcdBundle).
    public var membership: EtcdMembership?

    public init(context: [String: Any] = [:], perHost: [String: Data] = [:], membership: EtcdMembership? = nil) {
        self.context = context
        self.perHost = perHost
        self.membership = membership
    }

    /// `context` with `values` on top, for one host's snippet.
    public func context(_ values: [String: Any]) -> [String: Any] {
        context.merging(values) { _, own in own }
    }
}
