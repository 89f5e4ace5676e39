import ChpkiBase
import ChpkiCA
import ChpkiInventory
import Foundation

/// Who is in the etcd cluster and who is joining or leaving it, from the inventory and the install
/// records (SPEC §7 Growth). A member is an etcd host whose record holds etcd files; if no etcd host
/// has one, the cluster is new and every host bootstraps it (`ETCD_INITIAL_CLUSTER_STATE=new`).
/// Otherwise each host without etcd files joins with `existing` and an initial cluster of the
/// members plus the joiners before it (in the service's host order) plus itself: exactly the
/// member list etcd has once `etcdctl member add` ran for it, which etcd checks at its first start
/// ("member count is unequal" otherwise). Joiners are added one at a time, in that order.
public struct EtcdMembership: Sendable {
    public struct Peer: Sendable, Equatable {
        public var name: String
        /// `https://ADDRESS:2380`, as tls.env advertises it.
        public var peerURL: String
        public var clientURL: String
    }

    /// The etcd hosts of the inventory, in the service's order.
    public let hosts: [Peer]
    /// The hosts already in the cluster (their records hold etcd files), in the service's order.
    public let members: [Peer]
    /// The hosts to add with `etcdctl member add`, in the order to add them.
    public let joiners: [Peer]
    /// Recorded hosts with etcd files that are no longer etcd hosts of the inventory: `member remove`.
    public let leaving: [String]

    public var isNew: Bool { members.isEmpty }
    /// The lists every host of a new cluster, or every member, gets: built once, not per host.
    private let everyHost: String
    private let everyMember: String

    public init(hosts: [Host], installed: InstalledServices, service: String = "etcd") {
        let peers = hosts.map { host -> Peer in
            let address = ClusterFacts.address(of: host)
            return Peer(name: host.name, peerURL: "https://\(address):2380", clientURL: "https://\(address):2379")
        }
        self.hosts = peers
        members = peers.filter { installed.runs($0.name, service) }
        joiners = members.isEmpty ? [] : peers.filter { !installed.runs($0.name, service) }
        let names = Set(peers.map(\.name))
        leaving = installed.hosts(running: service).filter { !names.contains($0) }
        everyHost = Self.list(peers)
        everyMember = Self.list(members)
    }

    /// Refuses an inventory whose etcd hosts include none of the installed members while some
    /// installed member left it: every new host would bootstrap a new, empty cluster, and what the
    /// old one held (Patroni's state) would be gone. Members are replaced one at a time, each run
    /// keeping one; an empty cluster on purpose means removing the leavers' records first.
    public func checkContinuity(inventory: String?, service: String = "etcd", state: String?) throws {
        guard isNew, !leaving.isEmpty, !hosts.isEmpty else { return }
        throw ChpkiError.input(.inventoryConflict, file: inventory, field: "services.\(service).hosts",
            "every host that runs \(service) now (\(leaving.joined(separator: ", "))) left its hosts: the new ones would start a new, "
            + "empty cluster; keep a member and replace the others one at a time (docs/growth.md), or, for a new cluster on purpose, "
            + "remove their records from \(state ?? "the install state")")
    }

    private static func list(_ peers: [Peer]) -> String { peers.map { "\($0.name)=\($0.peerURL)" }.joined(separator: ",") }

    /// `name=peerURL,...` for `host`'s first start: every host of a new cluster; for a joiner, the
    /// members, the joiners before it and itself; for a member, the members (the list it would
    /// rejoin with after a `member remove`/`add` and an emptied data directory).
    public func initialCluster(for host: String) -> String {
        if isNew { return everyHost }
        guard let index = joiners.firstIndex(where: { $0.name == host }) else { return everyMember }
        let joining = Set(joiners[...index].map(\.name))
        return Self.list(hosts.filter { joining.contains($0.name) || members.contains($0) })
    }

    public func state(for host: String) -> String { isNew ? "new" : "existing" }

    /// The etcdctl steps, in the order to run them: removals first (etcd's advice for replacing a
    /// member: a failed joiner then never costs quorum), then one `member add` per joiner, each
    /// before etcd first starts on that host. Runs on a member, with its own certificates.
    public func steps(clientCertificate: String, clientKey: String) -> [String] {
        guard !members.isEmpty, !(joiners.isEmpty && leaving.isEmpty) else { return [] }
        let endpoints = members.map(\.clientURL).joined(separator: ",")
        let etcdctl = "ETCDCTL_API=3 etcdctl --endpoints \(endpoints) --cacert /\(EtcdBundle.authority)"
            + " --cert /\(clientCertificate) --key /\(clientKey)"
        var out: [String] = []
        for name in leaving {
            out.append("\(etcdctl) member remove \"$(\(etcdctl) member list | awk -F', ' '$3 == \"\(name)\" {print $1}')\""
                       + "    # on a member, before the rollout removes etcd from \(name): it leaves the cluster first")
        }
        for joiner in joiners {
            out.append("\(etcdctl) member add \(joiner.name) --peer-urls=\(joiner.peerURL)"
                       + "    # on a member, before etcd first starts on \(joiner.name); then start it there and wait for 'endpoint health'")
        }
        return out
    }
}
