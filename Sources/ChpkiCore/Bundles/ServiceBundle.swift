import Foundation

/// One service's bundle, described in one place (one file per service under `Services/`): the
/// files it gets (paths, owners, modes, chain and key format), the directories chpki owns for it,
/// its snippets, and the checks `chpki verify --bundle` runs on them. The layout and the verifier
/// both read these descriptors, so they cannot drift apart; adding a service is adding one file
/// and one line in `ServiceBundles.all`.
public protocol ServiceBundle: Sendable {
    /// The inventory service name (or `minicluster` for its layout).
    var name: String { get }

    /// What every host of the service shares, computed once per run (member lists, nodes_dn, ...).
    func prepare(_ service: Service, facts: ClusterFacts) throws -> ServiceFacts

    /// Directories chpki creates and owns for the service (never system directories such as etc/).
    func directories(_ service: Service, facts: ClusterFacts) -> [BundleDirectory]

    /// The files `host` gets for `service`.
    func files(for host: Host, _ service: Service, shared: ServiceFacts, facts: ClusterFacts) throws -> [BundleFile]

    /// What `verify --bundle` checks in a laid-out (or installed) tree of a host running `service`.
    func check(_ checks: inout BundleChecks, service: String)

    /// The snippets the service gets and what it must never accept in them (`SnippetRules.swift`):
    /// `verify --bundle` runs these after `check`.
    var snippets: [Snippet] { get }
}

extension ServiceBundle {
    public func prepare(_ service: Service, facts: ClusterFacts) throws -> ServiceFacts { ServiceFacts() }
    public func directories(_ service: Service, facts: ClusterFacts) -> [BundleDirectory] { [] }
}

/// A service whose files belong to its own system user (`owner`), as etcd's, OpenSearch's, MinIO's
/// and Patroni's do: the one way to make such a file, and the certificate, key and root that most
/// of them start with.
protocol ServiceUserBundle: ServiceBundle {
    static var owner: String { get }
}

extension ServiceUserBundle {
    /// A file of the service, owned by its user; `issued` dates the member (the certificate's notBefore).
    func file(_ path: String, _ contents: Data, mode: UInt16, issued: Date? = nil, role: BundleFile.Role? = nil) -> BundleFile {
        BundleFile(path, contents, mode: mode, owner: Self.owner, service: name, issued: issued, role: role)
    }

    /// The host's server certificate with its chain (0644), its key (0600) and the root (0644).
    func serverFiles(_ server: BundleInputs.Leaf, chain: String, key: String, root: String, facts: ClusterFacts) -> [BundleFile] {
        [
            file(chain, server.chainPEM, mode: 0o644, issued: server.notBefore),
            file(key, server.keyPEM, mode: 0o600),
            file(root, facts.rootPEM, mode: 0o644),
        ]
    }
}

/// Every descriptor chpki knows.
public enum ServiceBundles {
    /// Services with a layout of their own; any other service gets minicluster's.
    public static let all: [any ServiceBundle] = [
        OpenSearchBundle(), MinIOBundle(), PatroniBundle(), EtcdBundle(), HAProxyBundle(), NginxBundle(),
    ]
    /// minicluster's /etc/credentials layout (reference 002): for services without a layout of
    /// their own, and for every service when `minicluster` is named.
    public static let credentials = CredentialsBundle()
    /// The root in the system trust stores, on every host.
    public static let trust = TrustBundle()

    /// Not an inventory service: asks for minicluster's layout of every service.
    public static let minicluster = CredentialsBundle.layoutName

    private static let byName = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

    public static func descriptor(named name: String) -> (any ServiceBundle)? { byName[name] }

    /// The descriptor that lays out `name`: its own, else minicluster's.
    public static func layout(of name: String) -> any ServiceBundle { byName[name] ?? credentials }
}
