import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiBundles
@testable import ChpkiRollout
@testable import ChpkiCA

/// The rollout plan (issue 17, ROLLOUT-CONTRACT): from what each host last installed and its new
/// manifest, per-host steps in three phases — trust everywhere before any leaf, then leaves, then
/// cleanup — each step one host, hosts in name order, with the health checks of what it touched.
/// Manifests come from the descriptors' own layouts (placeholder leaves, real roots so each root
/// gets an anchor of its own), so these run in milliseconds.
@Suite("rollout plan: phases, per-host steps and their order")
struct RolloutPlanTests {
    // MARK: - A small world: inventory, roots, leaves

    static func inventory(backends: Int = 3, etcd: [Int] = [1, 2, 3], opensearch: [Int] = [1, 2, 3], extra: String = "") throws -> Inventory {
        var yaml = """
            domain: example.com
            subject: {O: Example, C: US}
            hosts:

            """
        for index in 1...backends { yaml += "  - {name: backend-\(index).example.com, ips: [10.0.0.\(index)], groups: [backend]}\n" }
        func list(_ members: [Int]) -> String { "[" + members.map { "backend-\($0)" }.joined(separator: ", ") + "]" }
        yaml += """
              - {name: frontend-1.example.com, ips: [10.0.1.1], groups: [frontend]}
            services:
              etcd: {hosts: \(list(etcd))}
              minio: {hosts: backend}
              nginx: {hosts: frontend}

            """
        if !opensearch.isEmpty { yaml += "  opensearch: {hosts: \(list(opensearch)), enable_client: false}\n" }
        yaml += extra
        return try Inventory.parse(yaml: yaml, path: "cluster.yml")
    }

    /// A self-signed root named `name` (its anchor file is named after it).
    static func root(_ name: String) throws -> Data {
        let key = try PrivateKey.generate(.ed25519)
        return try CertificateTemplate(
            subject: DistinguishedName([.init("CN", name)]), serial: SerialNumber(bytes: [1]),
            notBefore: Date(timeIntervalSince1970: 1_700_000_000), notAfter: Date(timeIntervalSince1970: 1_900_000_000),
            certificateAuthority: .init(), keyUsage: [.keyCertSign, .cRLSign]
        ).sign(publicKeyOf: key, by: Signer(certificate: nil, key: key)).pemEncoded()
    }

    static let oldRoot = Result { try root("Example Root CA") }
    static let newRoot = Result { try root("Example Root CA G2") }
    static let oldDigest = String(repeating: "0a", count: 32)
    static let newDigest = String(repeating: "0b", count: 32)

    /// Every host's manifest: `roots` in every trust file, each leaf's placeholder carrying
    /// `generation(identity)` (a new one is a re-issued leaf) and `leafRoot` as its root.
    static func manifests(_ inventory: Inventory, roots: [Data], leafRoot: String = oldDigest, caSHA256: String = oldDigest,
                          generation: (CertificateIdentity) -> Int = { _ in 1 }) throws -> [String: BundleManifest] {
        var leaves: [CertificateIdentity: BundleInputs.Leaf] = [:]
        for profile in NamingRules.profiles(for: inventory) {
            let text = Data("CERT \(profile.identity) #\(generation(profile.identity)) of \(leafRoot.prefix(4))\n".utf8)
            leaves[profile.identity] = .init(certificatePEM: text, keyPEM: SecretBytes(Data("KEY \(profile.identity)\n".utf8)), chainPEM: text,
                                             notBefore: Date(timeIntervalSince1970: 1_800_000_000), root: leafRoot)
        }
        let inputs = BundleInputs(roots: roots, intermediates: [], leaves: leaves, caSHA256: caSHA256,
                                  caCreated: Date(timeIntervalSince1970: 1_700_000_000))
        let facts = ClusterFacts(inventory: inventory, inputs: inputs, templates: try Templates(explicit: BundleLayoutTests.templates, environment: [:]),
                                 flavor: .cinc)
        let plan = try BundlePlan(facts: facts, services: inventory.services, minicluster: false)
        var out: [String: BundleManifest] = [:]
        for host in plan.hosts {
            // Through the bytes and the record reader, as the plan reads them from disk.
            let manifest = try plan.bundle(for: host).manifest()
            out[host.name] = try InstallRecord.parse(try manifest.encoded(), label: "\(host.name).json", host: host.name)
        }
        return out
    }

    static func plan(recorded: [String: BundleManifest], new: [String: BundleManifest],
                     operations: OperationsOverrides = OperationsOverrides()) -> RolloutPlan {
        let inputs = new.keys.sorted().map { host in
            RolloutPlan.HostInput(host: host, manifest: "bundles/\(host)/\(BundleManifest.path)", record: "state/\(host).json",
                                  recorded: recorded[host], new: new[host]!)
        }
        let orphans = recorded.keys.filter { new[$0] == nil }.sorted().map { RolloutPlan.Orphan(host: $0, record: "state/\($0).json") }
        return RolloutPlan.plan(inputs, orphans: orphans, operations: operations)
    }

    static func phase(_ plan: RolloutPlan, _ name: String) -> [RolloutStep] { plan.phases.first { $0.name == name }?.steps ?? [] }

    /// `host: service service ...` for each step of a phase, in order: who runs what, when.
    static func outline(_ plan: RolloutPlan, _ name: String) -> [String] {
        phase(plan, name).map { step in
            var seen = Set<String>()
            let services = step.run.map(\.service).filter { seen.insert($0).inserted }
            return ([step.host.split(separator: ".")[0] + ":"] + services).joined(separator: " ")
        }
    }

    static func roleOf(_ manifest: BundleManifest, _ path: String) -> FileRole? { manifest.role(of: path) }

    // MARK: - Tests

    @Test("nothing new: zero steps; a first install: trust anchors first, each service's on_trust once with its leaves")
    func nothingNewAndFirstInstall() throws {
        let inventory = try Self.inventory()
        let current = try Self.manifests(inventory, roots: [try Self.oldRoot.get()])
        #expect(Self.plan(recorded: current, new: current).steps.isEmpty)

        let first = Self.plan(recorded: [:], new: current)
        // Trust phase: every host, trust files only; only the anchors' service runs (the others
        // have no leaf yet: a restart would start them without one).
        #expect(Self.outline(first, "trust") == ["backend-1: trust", "backend-2: trust", "backend-3: trust", "frontend-1: trust"])
        for step in Self.phase(first, "trust") {
            let directories = Set(current[step.host]!.directories.map(\.path))
            #expect(step.copy.allSatisfy { Self.roleOf(current[step.host]!, $0) == .trust || directories.contains($0) }, "\(step.copy)")
            #expect(step.record == false)
        }
        // Leaves: the rest, and each service's on_trust (a start with everything in place), not on_leaf too.
        // The quorum services form a new cluster: their health checks all wait after the last
        // member's step, and the members before it are recorded only then (the steps with nothing
        // to copy or run right after it).
        #expect(Self.outline(first, "leaves") == ["backend-1: etcd minio opensearch", "backend-2: etcd minio opensearch",
                                                  "backend-3: etcd minio opensearch", "backend-1:", "backend-2:", "frontend-1: nginx"])
        let leaves = Self.phase(first, "leaves")
        #expect(leaves.count == 6)
        if leaves.count == 6 {
            #expect(leaves[0].health.isEmpty && leaves[1].health.isEmpty && !leaves[2].health.isEmpty)
            #expect(leaves[3].record && leaves[4].record && leaves[3].copy.isEmpty && leaves[3].run.isEmpty)
        }
        let backend1 = Self.phase(first, "leaves")[0]
        #expect(backend1.run.filter { $0.service == "etcd" }.map(\.argv) == [["systemctl", "restart", "etcd"]])
        // A directory travels with the first file below it: etcd's pki/ with ca.pem, in phase trust.
        #expect(Self.phase(first, "trust")[0].copy.prefix(2) == ["etc/etcd/pki", "etc/etcd/pki/ca.pem"])
        #expect(backend1.copy.contains("etc/etcd/pki/server.pem") && !backend1.copy.contains("etc/etcd/pki"))
        #expect(backend1.copy.last == BundleManifest.path && !backend1.record)
        #expect(Self.phase(first, "cleanup").isEmpty)
    }

    @Test("leaf change: only the host whose leaf was re-issued, in phase leaves, its service's on_leaf (etcd: none) and health")
    func leafChange() throws {
        let inventory = try Self.inventory()
        let old = try Self.manifests(inventory, roots: [try Self.oldRoot.get()])
        let renewed = try Self.manifests(inventory, roots: [try Self.oldRoot.get()]) { identity in
            identity.host == "backend-2.example.com" && identity.service == "etcd" ? 2 : 1
        }
        let plan = Self.plan(recorded: old, new: renewed)
        #expect(Self.phase(plan, "trust").isEmpty && Self.phase(plan, "cleanup").isEmpty)
        // etcd rereads its certificate per handshake: nothing runs, no restart of a quorum member.
        #expect(Self.outline(plan, "leaves") == ["backend-2:"])
        let step = try #require(Self.phase(plan, "leaves").first)
        #expect(step.copy == ["etc/etcd/pki/client.pem", "etc/etcd/pki/peer.pem", "etc/etcd/pki/server.pem", BundleManifest.path])
        #expect(step.run.isEmpty)
        // The step still checks the member serves (the new server.pem) before the next host.
        #expect(step.health == [HealthCheck(.etcd, address: "10.0.0.2", port: 2379, serverName: "backend-2.example.com",
                                            cafile: "/etc/etcd/pki/ca.pem", certfile: "/etc/etcd/pki/client.pem",
                                            keyfile: "/etc/etcd/pki/client-key.pem", leaf: "/etc/etcd/pki/server.pem", service: "etcd")])
        #expect(step.record && step.remove.isEmpty)
    }

    @Test("config change: etcd's tls.env runs on_config (a restart), with or without a leaf; a site's on_config replaces it")
    func configChange() throws {
        let inventory = try Self.inventory()
        let old = try Self.manifests(inventory, roots: [try Self.oldRoot.get()])
        func changed(_ path: String, on host: String, _ manifests: [String: BundleManifest]) -> [String: BundleManifest] {
            var out = manifests
            let index = out[host]!.files.firstIndex { $0.path == path }!
            out[host]!.files[index].sha256 = String(repeating: "e", count: 64)
            return out
        }
        let config = changed("etc/etcd/tls.env", on: "backend-1.example.com", old)
        var plan = Self.plan(recorded: old, new: config)
        #expect(Self.outline(plan, "leaves") == ["backend-1: etcd"])
        var step = try #require(Self.phase(plan, "leaves").first)
        #expect(step.run.map(\.argv) == [["systemctl", "restart", "etcd"]] && step.run[0].why == ["etc/etcd/tls.env (changed)"])
        #expect(step.health.map(\.kind) == [.etcd])
        // A leaf and tls.env together: one restart (on_config covers the leaf).
        let both = changed("etc/etcd/pki/server.pem", on: "backend-1.example.com", config)
        step = try #require(Self.phase(Self.plan(recorded: old, new: both), "leaves").first)
        #expect(step.run.map(\.argv) == [["systemctl", "restart", "etcd"]])
        // A file of unknown role (no manifest chpki writes has one) is treated as config: a restart.
        var format2 = old
        format2["backend-1.example.com"]!.files = format2["backend-1.example.com"]!.files.map { var f = $0; f.role = nil; return f }
        let leafOnly = changed("etc/etcd/pki/server.pem", on: "backend-1.example.com", old)
        var unknown = leafOnly
        unknown["backend-1.example.com"]!.files = unknown["backend-1.example.com"]!.files.map { var f = $0; f.role = nil; return f }
        step = try #require(Self.phase(Self.plan(recorded: format2, new: unknown), "leaves").first)
        #expect(step.run.map(\.argv) == [["systemctl", "restart", "etcd"]])
        // A site's on_config replaces the descriptor's; a site's on_leaf alone covers config too.
        let site = try OperationsOverrides.parse(Data("etcd: {on_config: [[etcdctl-reload]], on_leaf: [[true]]}\n".utf8), label: "ops.yml")
        plan = Self.plan(recorded: old, new: config, operations: site)
        #expect(Self.phase(plan, "leaves").first?.run.map(\.argv) == [["etcdctl-reload"]])
        plan = Self.plan(recorded: old, new: leafOnly, operations: site)
        #expect(Self.phase(plan, "leaves").first?.run.map(\.argv) == [["true"]])
        let leafOnlySite = try OperationsOverrides.parse(Data("etcd: {on_leaf: [[true]]}\n".utf8), label: "ops.yml")
        plan = Self.plan(recorded: old, new: config, operations: leafOnlySite)
        #expect(Self.phase(plan, "leaves").first?.run.map(\.argv) == [["true"]])
        #expect(throws: ChpkiError.self) { try OperationsOverrides.parse(Data("etcd: {on_config: [[]]}\n".utf8), label: "ops.yml") }
    }

    @Test("trust change: every host gets only its trust files and on_trust first; leaves untouched")
    func trustChange() throws {
        let inventory = try Self.inventory()
        let old = try Self.manifests(inventory, roots: [try Self.oldRoot.get()])
        // rotate-ca started: both roots in every trust file, leaves still from the old root.
        let started = try Self.manifests(inventory, roots: [try Self.newRoot.get(), try Self.oldRoot.get()], caSHA256: Self.newDigest)
        let plan = Self.plan(recorded: old, new: started)
        #expect(Self.outline(plan, "trust") == ["backend-1: trust etcd minio opensearch", "backend-2: trust etcd minio opensearch",
                                                "backend-3: trust etcd minio opensearch", "frontend-1: trust"])
        #expect(Self.phase(plan, "leaves").isEmpty && Self.phase(plan, "cleanup").isEmpty)
        for step in Self.phase(plan, "trust") {
            let manifest = started[step.host]!
            #expect(step.copy.dropLast().allSatisfy { Self.roleOf(manifest, $0) == .trust }, "\(step.copy)")
            #expect(step.copy.contains("usr/local/share/ca-certificates/example-root-ca-g2.crt"))
            #expect(step.run.first?.argv == ["update-ca-certificates"])
            #expect(step.record, "the host's only step records it")
        }
        let backend = Self.phase(plan, "trust")[0]
        #expect(backend.run.map(\.argv).contains(["systemctl", "restart", "etcd"]))
        #expect(backend.run.map(\.argv).contains(["systemctl", "restart", "minio"]))
        #expect(Set(backend.health.compactMap(\.service)) == ["etcd", "minio", "opensearch"])
    }

    @Test("peer-list change: a new etcd member; the others keep their bootstrap.env and run nothing, the new member starts with on_trust once")
    func peerListChange() throws {
        let before = try Self.manifests(try Self.inventory(backends: 4, etcd: [1, 2, 3]), roots: [try Self.oldRoot.get()])
        let after = try Self.manifests(try Self.inventory(backends: 4, etcd: [1, 2, 3, 4]), roots: [try Self.oldRoot.get()])
        let plan = Self.plan(recorded: before, new: after)
        // backend-4 had a record (MinIO) but never etcd: its new ca.pem is copied in phase trust,
        // and etcd starts only in phase leaves, with its leaves (on_trust, not on_leaf as well).
        #expect(Self.outline(plan, "trust") == ["backend-4:"])
        #expect(Self.phase(plan, "trust")[0].copy.contains("etc/etcd/pki/ca.pem"))
        // The members' tls.env no longer lists the cluster (bootstrap.env does, read only at a
        // first start, never re-copied): nothing restarts on them, only their records follow.
        #expect(Self.outline(plan, "leaves") == ["backend-1:", "backend-2:", "backend-3:", "backend-4: etcd"])
        let leaves = Self.phase(plan, "leaves")
        #expect(leaves.count == 4)
        guard leaves.count == 4 else { return }
        #expect(leaves[0...2].allSatisfy { $0.run.isEmpty && !$0.copy.contains("etc/etcd/bootstrap.env") && $0.record })
        #expect(leaves[3].run.count == 1 && leaves[3].run[0].why.contains("etc/etcd/pki/ca.pem (added)"))
        #expect(leaves[3].copy.contains("etc/etcd/bootstrap.env"))
        #expect(leaves[3].health.contains { $0.kind == .etcd } && leaves[3].record)
        #expect(Self.phase(plan, "trust")[0].record == false)
    }

    @Test("a service leaving a host: its files removed in cleanup, never reloaded; the others' config follows")
    func serviceLeavesHost() throws {
        let before = try Self.manifests(try Self.inventory(opensearch: [1, 2, 3]), roots: [try Self.oldRoot.get()])
        let after = try Self.manifests(try Self.inventory(opensearch: [1, 2]), roots: [try Self.oldRoot.get()])
        let plan = Self.plan(recorded: before, new: after)
        #expect(Self.phase(plan, "trust").isEmpty)
        // nodes_dn lists the members: the two that stay restart, one at a time.
        #expect(Self.outline(plan, "leaves") == ["backend-1: opensearch", "backend-2: opensearch"])
        #expect(Self.outline(plan, "cleanup") == ["backend-3:"])
        let cleanup = Self.phase(plan, "cleanup")[0]
        #expect(cleanup.remove.contains("/etc/opensearch/private.key") && cleanup.remove.contains("/etc/opensearch/root-ca.pem"))
        #expect(cleanup.run.isEmpty && cleanup.record && cleanup.copy == [BundleManifest.path])
        // The files leave after the services that stay were reloaded.
        #expect(plan.phases.map(\.name) == ["trust", "leaves", "cleanup"])
    }

    @Test("a host leaving: an orphan nothing runs on; the peers drop its certificate (MinIO restarts: trust) and its address")
    func hostLeaves() throws {
        let before = try Self.manifests(try Self.inventory(backends: 4, etcd: [1, 2, 3]), roots: [try Self.oldRoot.get()])
        let after = try Self.manifests(try Self.inventory(backends: 3, etcd: [1, 2, 3]), roots: [try Self.oldRoot.get()])
        let plan = Self.plan(recorded: before, new: after)
        #expect(plan.orphans.map(\.host) == ["backend-4.example.com"])
        #expect(!plan.steps.contains { $0.host == "backend-4.example.com" })
        // MinIO's CAs/backend-4.crt goes away: a trust change, MinIO reads CAs/ only at start.
        #expect(Self.outline(plan, "trust") == ["backend-1: minio", "backend-2: minio", "backend-3: minio"])
        let trust = Self.phase(plan, "trust")[0]
        #expect(trust.remove == ["/home/minio-user/.minio/certs/CAs/backend-4.crt"])
        #expect(trust.run.map(\.argv) == [["systemctl", "restart", "minio"]])
        // minio.tls lists the volumes: phase leaves restarts MinIO again, one host at a time;
        // OpenSearch's rendered settings follow the member list too (a restart each, in turn).
        #expect(Self.outline(plan, "leaves") == ["backend-1: minio opensearch", "backend-2: minio opensearch", "backend-3: minio opensearch"])
    }

    @Test("Patroni: a trust change restarts it in maintenance mode (PostgreSQL keeps running); a host new to it just starts it")
    func patroniTrust() throws {
        let inventory = try Self.inventory(extra: "  patroni: {hosts: [backend-1, backend-2, backend-3]}\n")
        let (old, new) = (try Self.oldRoot.get(), try Self.newRoot.get())
        let before = try Self.manifests(inventory, roots: [old])
        let reissued = try Self.manifests(inventory, roots: [new, old], leafRoot: Self.newDigest, caSHA256: Self.newDigest)
        let trust = Self.phase(Self.plan(recorded: before, new: reissued), "trust").filter { $0.host.hasPrefix("backend") }
        let ctl = { (action: String) in ["patronictl", "-c", "/etc/patroni/patroni.yml", action, "--wait"] }
        #expect(trust.count == 3)
        for step in trust {
            // Paused: no failover, and the stopping Patroni leaves PostgreSQL running (no lost write).
            #expect(step.run.filter { $0.service == "patroni" }.map(\.argv) == [
                ctl("pause"), ["systemctl", "restart", "patroni"],
                ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-c", "SELECT pg_reload_conf()"], ctl("resume"),
            ])
            // The restarted REST API trusts the new root: checked with the new client certificate.
            #expect(step.health.filter { $0.service == "patroni" }.map(\.kind) == [.patroniREST, .postgres])
        }
        // A first install: nothing to pause yet, Patroni starts (on_start), its checks after the last member.
        let fresh = Self.plan(recorded: [:], new: before)
        let starts = Self.phase(fresh, "leaves").flatMap(\.run).filter { $0.service == "patroni" }.map(\.argv)
        #expect(starts == Array(repeating: ["systemctl", "restart", "patroni"], count: 3))
        // A site's on_trust replaces both (it starts a new host too) unless the site gives on_start.
        let site = try OperationsOverrides.parse(Data("patroni: {on_trust: [[pgctl, restart]]}\n".utf8), label: "ops.yml")
        let siteStarts = Self.phase(Self.plan(recorded: [:], new: before, operations: site), "leaves").flatMap(\.run)
        #expect(siteStarts.filter { $0.service == "patroni" }.map(\.argv) == Array(repeating: ["pgctl", "restart"], count: 3))
        #expect(throws: ChpkiError.self) { try OperationsOverrides.parse(Data("patroni: {on_start: [systemctl restart patroni]}\n".utf8), label: "ops.yml") }
    }

    @Test("rotate-ca start, re-issue, finish: trust first everywhere, then leaves of the new root, then the old root leaves trust")
    func rotation() throws {
        let inventory = try Self.inventory()
        let (old, new) = (try Self.oldRoot.get(), try Self.newRoot.get())
        let before = try Self.manifests(inventory, roots: [old])
        // One rollout after `rotate-ca` + `issue`: both roots and the new leaves at once.
        let reissued = try Self.manifests(inventory, roots: [new, old], leafRoot: Self.newDigest, caSHA256: Self.newDigest)
        let plan = Self.plan(recorded: before, new: reissued)
        let trust = Self.phase(plan, "trust"), leaves = Self.phase(plan, "leaves")
        #expect(trust.map(\.host) == ["backend-1.example.com", "backend-2.example.com", "backend-3.example.com", "frontend-1.example.com"])
        #expect(leaves.map(\.host) == trust.map(\.host))
        // No leaf before every host trusts the new root: the trust steps copy no leaf or key.
        for step in trust {
            #expect(step.copy.dropLast(0).allSatisfy { ![.leaf, .key].contains(Self.roleOf(reissued[step.host]!, $0)) })
            #expect(!step.record)
        }
        for step in leaves {
            #expect(step.copy.contains { Self.roleOf(reissued[step.host]!, $0) == .leaf })
            #expect(!step.copy.contains { Self.roleOf(reissued[step.host]!, $0) == .trust })
            #expect(step.record)
        }
        // etcd took its new trust with a restart in phase trust and takes its new leaf by itself.
        #expect(Self.outline(plan, "leaves")[0] == "backend-1: minio opensearch")
        #expect(trust[0].run.first { $0.service == "etcd" }?.argv == ["systemctl", "restart", "etcd"])
        #expect(leaves[0].health.contains { $0.service == "etcd" })
        // A trust step's checks accept the leaf the host still serves (its new one comes in its
        // leaves step); the leaves step's checks expect exactly the new one.
        #expect(trust.flatMap(\.health).allSatisfy { $0.leaf == nil } && !trust.flatMap(\.health).isEmpty)
        #expect(leaves[0].health.first { $0.service == "etcd" }?.leaf == "/etc/etcd/pki/server.pem")
        #expect(leaves.flatMap(\.health).allSatisfy { $0.leaf != nil })

        // The records now show the new root's leaves: --finish may go; then the old root leaves
        // every trust file (its anchors are removed, in phase trust, with update-ca-certificates).
        let finished = try Self.manifests(inventory, roots: [new], leafRoot: Self.newDigest, caSHA256: Self.newDigest)
        let last = Self.plan(recorded: reissued, new: finished)
        #expect(Self.outline(last, "trust") == ["backend-1: trust etcd minio opensearch", "backend-2: trust etcd minio opensearch",
                                                "backend-3: trust etcd minio opensearch", "frontend-1: trust"])
        #expect(Self.phase(last, "leaves").isEmpty && Self.phase(last, "cleanup").isEmpty)
        // No leaf changes: the installed leaves are the bundle's, and the trust steps expect them.
        #expect(Self.phase(last, "trust")[0].health.first { $0.service == "etcd" }?.leaf == "/etc/etcd/pki/server.pem")
        let frontend = Self.phase(last, "trust")[3]
        #expect(frontend.remove == ["/etc/pki/ca-trust/source/anchors/example-root-ca.pem", "/usr/local/share/ca-certificates/example-root-ca.crt"])
        #expect(frontend.run.map(\.argv) == [["update-ca-certificates"]])
    }

    @Test("rotate-ca --finish's gate: no record, old trust, old leaves and format 2 are named; all new passes")
    func rotationGate() throws {
        let inventory = try Self.inventory()
        let (old, new) = (try Self.oldRoot.get(), try Self.newRoot.get())
        let before = try Self.manifests(inventory, roots: [old])
        let started = try Self.manifests(inventory, roots: [new, old], caSHA256: Self.newDigest)
        let reissued = try Self.manifests(inventory, roots: [new, old], leafRoot: Self.newDigest, caSHA256: Self.newDigest)
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("chpki-gate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }
        func write(_ manifest: BundleManifest) throws {
            try manifest.encoded().write(to: URL(fileURLWithPath: "\(state)/\(manifest.host).json"))
        }
        let hosts = RotationGate.hosts(of: inventory)
        #expect(hosts == ["backend-1.example.com", "backend-2.example.com", "backend-3.example.com", "frontend-1.example.com"])
        for host in hosts { try write(reissued[host]!) }
        #expect(try RotationGate.lagging(hosts: hosts, state: state, newRoot: Self.newDigest).isEmpty)

        try write(before["backend-2.example.com"]!)
        try write(started["backend-3.example.com"]!)
        try FileManager.default.removeItem(atPath: "\(state)/frontend-1.example.com.json")
        let lagging = try RotationGate.lagging(hosts: hosts, state: state, newRoot: Self.newDigest)
        #expect(lagging.map(\.host) == ["backend-2.example.com", "backend-3.example.com", "frontend-1.example.com"])
        #expect(lagging[0].has.contains("trust without the new root") && lagging[0].has.contains("from another root"))
        #expect(!lagging[1].has.contains("trust without") && lagging[1].has.contains("leaf file(s) from another root"))
        #expect(lagging[2].has.contains("no record"))
        let message = "\(RotationGate.refusal(lagging, state: state))"
        #expect(message.contains("--finish") && message.contains("backend-2.example.com has trust without the new root"), "\(message)")

        // A format-2 record does not say which root its leaves are from.
        var format2 = reissued["frontend-1.example.com"]!
        format2.format = 2
        format2.operations = nil
        format2.files = format2.files.map { file in
            var file = file
            (file.role, file.root) = (nil, nil)
            return file
        }
        try write(format2)
        let named = try RotationGate.lagging(hosts: ["frontend-1.example.com"], state: state, newRoot: Self.newDigest)
        #expect(named.first?.has.contains("format-2") == true)
    }

    @Test("a format-2 record is read: same files, a step that only records the host; its removed trust files are still trust")
    func format2Record() throws {
        let inventory = try Self.inventory()
        let current = try Self.manifests(inventory, roots: [try Self.oldRoot.get()])
        var records: [String: BundleManifest] = [:]
        for (host, manifest) in current {
            var old = manifest
            old.format = 2
            old.operations = nil
            old.files = old.files.map { file in
                var file = file
                (file.role, file.root) = (nil, nil)
                return file
            }
            records[host] = try RolloutTests.parse(old, host: host)
        }
        let plan = Self.plan(recorded: records, new: current)
        #expect(Self.outline(plan, "leaves") == ["backend-1:", "backend-2:", "backend-3:", "frontend-1:"])
        #expect(Self.phase(plan, "leaves").allSatisfy { $0.copy == [BundleManifest.path] && $0.record && $0.run.isEmpty })
    }

    @Test("site overrides replace a descriptor's key; refusals name the file and the field")
    func operationsOverrides() throws {
        let yaml = """
            trust:
              on_trust: [[update-ca-trust, extract]]
            etcd:
              serial: false
              health: [{kind: tls, port: 2381}]

            """
        let overrides = try OperationsOverrides.parse(Data(yaml.utf8), label: "ops.yml")
        let inventory = try Self.inventory()
        let old = try Self.manifests(inventory, roots: [try Self.oldRoot.get()])
        let new = try Self.manifests(inventory, roots: [try Self.newRoot.get(), try Self.oldRoot.get()], caSHA256: Self.newDigest)
        let plan = Self.plan(recorded: old, new: new, operations: overrides)
        let step = Self.phase(plan, "trust")[0]
        #expect(step.run.first?.argv == ["update-ca-trust", "extract"])
        #expect(step.run.contains { $0.argv == ["systemctl", "restart", "etcd"] }, "on_trust not overridden stays")
        #expect(step.health.first { $0.service == "etcd" } == HealthCheck(.tls, address: "backend-1.example.com", port: 2381,
                                                                          serverName: "backend-1.example.com", cafile: "/etc/etcd/pki/ca.pem",
                                                                          leaf: "/etc/etcd/pki/server.pem", service: "etcd"),
                "an overridden check takes the descriptor's cafile and leaf (the leaves did not change: compared in the trust step)")
        // A site that empties on_trust: a service new to a host still starts, with on_leaf.
        let quiet = try OperationsOverrides.parse(Data("etcd: {on_trust: []}\n".utf8), label: "ops.yml")
        let firstInstall = Self.plan(recorded: [:], new: old, operations: quiet)
        #expect(Self.phase(firstInstall, "leaves")[0].run.filter { $0.service == "etcd" }.map(\.argv) == [["systemctl", "restart", "etcd"]])
        #expect(Self.phase(firstInstall, "trust")[0].run.allSatisfy { $0.service == "trust" })
        for (text, field) in [
            ("etcd: {on_leaf: [systemctl restart etcd]}", "etcd.on_leaf[0]"),
            ("etcd: {on_leaf: [[]]}", "etcd.on_leaf[0]"),
            ("etcd: {reload: [[x]]}", "etcd.reload"),
            ("etcd: {serial: maybe}", "etcd.serial"),
            ("etcd: {health: [{kind: ping, port: 1}]}", "etcd.health[0].kind"),
            ("etcd: {health: [{kind: tls, port: 70000}]}", "etcd.health[0].port"),
            ("etcd: {health: [{kind: tls, port: 1, cafile: ../x}]}", "etcd.health[0].cafile"),
            ("etcd: {on_trust: [[\"a\\nb\"]]}", "etcd.on_trust[0]"),
        ] {
            do {
                _ = try OperationsOverrides.parse(Data(text.utf8), label: "ops.yml")
                Issue.record("accepted: \(text)")
            } catch {
                #expect("\(error)".contains("ops.yml: \(field):"), "\(text): \(error)")
            }
        }
        for bad in ["- a\n- b\n", "\"$(x)\": {serial: true}\n", "etcd: [1]\n", ": :\n  - ["] {
            #expect(throws: ChpkiError.self) { try OperationsOverrides.parse(Data(bad.utf8), label: "ops.yml") }
        }
    }

    @Test("make(): the plan from trees and records on disk, the JSON shape of the contract, deterministic bytes")
    func fromDisk() throws {
        let inventory = try Self.inventory()
        let old = try Self.manifests(inventory, roots: [try Self.oldRoot.get()])
        let new = try Self.manifests(inventory, roots: [try Self.oldRoot.get()]) { $0.host == "frontend-1.example.com" ? 2 : 1 }
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("chpki-plan-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        for (host, manifest) in new {
            try FileManager.default.createDirectory(atPath: "\(base)/bundles/\(host)/\(BundleManifest.directory)", withIntermediateDirectories: true)
            try manifest.encoded().write(to: URL(fileURLWithPath: "\(base)/bundles/\(host)/\(BundleManifest.path)"))
        }
        try FileManager.default.createDirectory(atPath: "\(base)/state", withIntermediateDirectories: true)
        for (host, manifest) in old { try manifest.encoded().write(to: URL(fileURLWithPath: "\(base)/state/\(host).json")) }
        let plan = try RolloutPlan.make(bundles: "\(base)/bundles", state: "\(base)/state", only: [], force: false)
        #expect(Self.outline(plan, "leaves") == ["frontend-1: nginx"])
        #expect(Self.phase(plan, "leaves")[0].run.map(\.argv) == [["cinc-server-ctl", "reconfigure"]])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try encoder.encode(plan)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(Set(object.keys) == ["phases", "orphans"])
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.contains("\"server_name\":\"frontend-1.example.com\"") && text.contains("\"record\":true"))
        let again = try RolloutPlan.make(bundles: "\(base)/bundles", state: "\(base)/state", only: [], force: false)
        #expect(try encoder.encode(again) == json)
        // --force: every host in full.
        let forced = try RolloutPlan.make(bundles: "\(base)/bundles", state: "\(base)/state", only: ["backend-1"], force: true)
        #expect(forced.steps.map(\.host) == ["backend-1.example.com", "backend-1.example.com"])
    }

    @Test("adding a service is one Swift file: a toy descriptor from the test target gets its files, roles, operations and plan")
    func toyService() throws {
        ServiceBundles.register(ToyBundle())
        let inventory = try Self.inventory(extra: "  toy: {hosts: [backend-1, backend-2]}\n")
        let old = try Self.manifests(inventory, roots: [try Self.oldRoot.get()])
        let toyRenewed = try Self.manifests(inventory, roots: [try Self.oldRoot.get()]) { $0.service == "toy" ? 2 : 1 }
        let manifest = try #require(toyRenewed["backend-1.example.com"])
        #expect(manifest.role(of: "etc/toy/toy.crt") == .leaf && manifest.role(of: "etc/toy/ca.crt") == .trust)
        #expect(manifest.operations?["toy"] == ToyBundle.operations(host: "backend-1.example.com"))
        let plan = Self.plan(recorded: old, new: toyRenewed)
        #expect(Self.outline(plan, "leaves") == ["backend-1: toy", "backend-2: toy"])
        let step = Self.phase(plan, "leaves")[0]
        #expect(step.run.map(\.argv) == [["toyctl", "reload"]])
        #expect(step.health.map(\.port) == [7443] && step.health[0].service == "toy")
        // The record reader knows the toy's paths like chpki's own.
        #expect(try RolloutTests.parse(manifest, host: "backend-1.example.com") == manifest)
    }
}

/// A service chpki does not ship, defined here only: its layout, roles and operations are all it
/// takes (with one `ServiceBundles.register` call) for bundles, records and the rollout plan.
struct ToyBundle: ServiceBundle {
    let name = "toy"

    func files(for host: ChpkiCore.Host, _ service: Service, shared: ServiceFacts, facts: ClusterFacts) throws -> [BundleFile] {
        let server = try facts.server(service, host)
        return [
            BundleFile("etc/toy/toy.crt", server.chainPEM, mode: 0o644, owner: "root", service: name, issued: server.notBefore, role: .leaf),
            BundleFile("etc/toy/toy.key", server.keyPEM, mode: 0o600, owner: "root", service: name, role: .key),
            BundleFile("etc/toy/ca.crt", facts.rootPEM, mode: 0o644, owner: "root", service: name, role: .trust),
        ]
    }

    func check(_ checks: inout BundleChecks, service: String) {}

    func operations(for host: ChpkiCore.Host, _ service: Service, facts: ClusterFacts) -> ServiceOperations {
        Self.operations(host: host.name)
    }

    static func operations(host: String) -> ServiceOperations {
        ServiceOperations(onLeaf: [["toyctl", "reload"]], onTrust: [["toyctl", "restart"]], serial: true,
                          health: [HealthCheck(.tls, address: host, port: 7443, serverName: host, cafile: "/etc/toy/ca.crt")])
    }
}
