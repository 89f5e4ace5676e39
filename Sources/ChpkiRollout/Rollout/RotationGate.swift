import ChpkiBase
import ChpkiBundles
import ChpkiCA
import ChpkiInventory
import ChpkiPlatform
import Foundation

/// What `rotate-ca --finish` asks of the hosts before the old root leaves the trust files (SPEC §7,
/// issue 17): every host of the inventory has a record (`<state>/<fqdn>.json`, written by the
/// rollout after the host's steps succeeded) showing trust that holds the new root (a bundle made
/// since the rotation started: its `ca_sha256` is the new root, and every trust file of such a
/// bundle holds all the trusted roots) and only leaves whose chain ends at the new root. Else a
/// host would lose the trust of the leaves it still presents, or still lack the new root.
public enum RotationGate {
    public struct Lagging: Sendable, Equatable {
        public var host: String
        /// What the record still shows, for the message.
        public var has: String
    }

    /// The hosts that have not installed the new root's trust and leaves, in inventory order.
    /// `newRoot`: lower-case hex SHA-256 of the new root's DER.
    public static func lagging(hosts: [String], state: String, newRoot: String) throws -> [Lagging] {
        var out: [Lagging] = []
        for host in hosts {
            let path = Path.join(state, "\(host).json")
            guard let record = try InstallRecord.read(path, host: host) else {
                out.append(Lagging(host: host, has: "no record"))
                continue
            }
            if record.format < 3 {
                out.append(Lagging(host: host, has: "a format-\(record.format) record, which does not say which root its leaves are from"))
                continue
            }
            var problems: [String] = []
            if record.caSHA256 != newRoot { problems.append("trust without the new root (a bundle of root \(record.caSHA256.prefix(12)))") }
            let leaves = record.files.filter { $0.role == .leaf }
            let old = leaves.filter { $0.root != newRoot }
            if let first = old.first {
                problems.append("\(old.count) of \(leaves.count) leaf file(s) from another root (first: /\(first.path))")
            }
            if !problems.isEmpty { out.append(Lagging(host: host, has: problems.joined(separator: " and "))) }
        }
        return out
    }

    /// The hosts that get a bundle: those running at least one service, in inventory order.
    public static func hosts(of inventory: Inventory) -> [String] {
        let running = Set(inventory.services.flatMap(\.hostNames))
        return inventory.hosts.map(\.name).filter(running.contains)
    }

    /// The one-line refusal: how many hosts lag, the first three and what each still has.
    public static func refusal(_ lagging: [Lagging], state: String) -> ChpkiError {
        let shown = lagging.prefix(3).map { "\($0.host) has \($0.has)" }.joined(separator: "; ")
        let more = lagging.count > 3 ? "; and \(lagging.count - 3) more" : ""
        return ChpkiError.input(.caHostsNotInstalled, file: state, field: "--finish",
            "\(lagging.count) host(s) have not installed the new root's trust and leaves: \(shown)\(more); run 'chpki bundle' and 'chpki rollout' first (or --force-unrecorded where hosts are installed without chpki's rollout)")
    }
}

extension CARotation.Installed {
    /// `rotate-ca --finish`'s check: every host of `hosts` has a record under `state` showing the new
    /// root's trust and leaves.
    public init(hosts: [String], state: String) {
        self.init { newRoot in
            let lagging = try RotationGate.lagging(hosts: hosts, state: state, newRoot: newRoot)
            guard lagging.isEmpty else { throw RotationGate.refusal(lagging, state: state) }
        }
    }
}
