import ChpkiBase
import ChpkiCA
import ChpkiInventory
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

    /// What `host` runs when the service's files change (leaf, key, config: `onLeaf`; trust:
    /// `onTrust`), whether it is a quorum service, and how to check it serves again. These defaults
    /// travel in MANIFEST.json; a site's operations file replaces any key (docs/deployment.md).
    func operations(for host: Host, _ service: Service, facts: ClusterFacts) -> ServiceOperations
}

extension ServiceBundle {
    public func prepare(_ service: Service, facts: ClusterFacts) throws -> ServiceFacts { ServiceFacts() }
    public func directories(_ service: Service, facts: ClusterFacts) -> [BundleDirectory] { [] }
    /// A unit named after the service: reload (or restart) on a leaf, restart on trust.
    public func operations(for host: Host, _ service: Service, facts: ClusterFacts) -> ServiceOperations {
        .generic(service.name)
    }
}

/// A service whose files belong to its own system user (`owner`), as etcd's, OpenSearch's, MinIO's
/// and Patroni's do: the one way to make such a file, and the certificate, key and root that most
/// of them start with.
protocol ServiceUserBundle: ServiceBundle {
    static var owner: String { get }
}

extension ServiceUserBundle {
    /// A file of the service, owned by its user; `issued` dates the member (the certificate's notBefore).
    func file(_ path: String, _ contents: Data, mode: UInt16, issued: Date? = nil, role: FileRole = .config) -> BundleFile {
        BundleFile(path, contents, mode: mode, owner: Self.owner, service: name, issued: issued, role: role)
    }

    /// A file of the service that holds a private key (its bytes stay in wiped memory).
    func file(_ path: String, _ secret: SecretBytes, mode: UInt16, issued: Date? = nil, role: FileRole = .config) -> BundleFile {
        BundleFile(path, secret, mode: mode, owner: Self.owner, service: name, issued: issued, role: role)
    }

    /// The host's server certificate with its chain (0644), its key (0600) and the root (0644).
    func serverFiles(_ server: BundleInputs.Leaf, chain: String, key: String, root: String, facts: ClusterFacts) -> [BundleFile] {
        [
            file(chain, server.chainPEM, mode: 0o644, issued: server.notBefore, role: .leaf),
            file(key, server.keyPEM, mode: 0o600, role: .key),
            file(root, facts.rootPEM, mode: 0o644, role: .trust),
        ]
    }
}

/// Every descriptor chpki knows.
public enum ServiceBundles {
    /// chpki's own descriptors.
    static let builtIn: [any ServiceBundle] = [
        OpenSearchBundle(), MinIOBundle(), PatroniBundle(), EtcdBundle(), HAProxyBundle(), NginxBundle(),
    ]

    /// Descriptors added at run time (`register`): a service defined outside this module, such as
    /// the test suite's toy service, which proves a service is one file.
    private static let registry = Registry()

    private final class Registry: @unchecked Sendable {  // every access under `lock`
        let lock = NSLock()
        var added: [any ServiceBundle] = []
        var generation = 0
    }

    /// Services with a layout of their own; any other service gets minicluster's.
    public static var all: [any ServiceBundle] {
        registry.lock.withLock { builtIn + registry.added.filter { added in !builtIn.contains { $0.name == added.name } } }
    }

    /// Adds (or replaces) a descriptor; the paths the rollout accepts are derived again.
    public static func register(_ descriptor: any ServiceBundle) {
        registry.lock.withLock {
            registry.added.removeAll { $0.name == descriptor.name }
            registry.added.append(descriptor)
            registry.generation += 1
        }
    }

    /// Changes with every `register`: what depends on the set of descriptors is derived again.
    static var generation: Int { registry.lock.withLock { registry.generation } }
    /// minicluster's /etc/credentials layout (reference 002): for services without a layout of
    /// their own, and for every service when `minicluster` is named.
    public static let credentials = CredentialsBundle()
    /// The root in the system trust stores, on every host.
    public static let trust = TrustBundle()

    /// Not an inventory service: asks for minicluster's layout of every service.
    public static let minicluster = CredentialsBundle.layoutName

    public static func descriptor(named name: String) -> (any ServiceBundle)? {
        if let own = builtIn.first(where: { $0.name == name }) { return own }
        return registry.lock.withLock { registry.added.first { $0.name == name } }
    }

    /// The descriptor that lays out `name`: its own, else minicluster's.
    public static func layout(of name: String) -> any ServiceBundle { descriptor(named: name) ?? credentials }
}
