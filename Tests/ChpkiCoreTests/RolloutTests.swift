import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiSecretBundles
@testable import ChpkiBundles
@testable import ChpkiRollout
@testable import ChpkiCA

/// The recorded-manifest reader (InstallRecord, InstallPaths) and the per-host diff (ManifestDiff)
/// behind `chpki rollout-plan`: manifests from the descriptors' own layouts (BundleLayoutTests).
@Suite("rollout: install records and manifest diffs")
struct RolloutTests {
    static func manifest(_ host: String = "backend-1", inventory: Inventory? = nil, minicluster: Bool = false,
                         flavor: FrontendFlavor = .cinc) throws -> BundleManifest {
        try BundleLayoutTests.bundle(host, inventory: try inventory ?? BundleLayoutTests.inventory(), minicluster: minicluster,
                                     flavor: flavor).manifest()
    }

    static func parse(_ manifest: BundleManifest, host: String? = nil) throws -> BundleManifest {
        try InstallRecord.parse(try manifest.encoded(), label: "state/x.json", host: host)
    }

    static func refusal(_ manifest: BundleManifest, host: String? = nil) -> String? {
        do { _ = try parse(manifest, host: host); return nil } catch { return "\(error)" }
    }

    @Test("every manifest chpki lays out reads back, whatever the services, flavor or minicluster")
    func chpkiManifestsAreAccepted() throws {
        let inventory = try BundleLayoutTests.inventory(minio: 5)
        for host in inventory.hosts.map(\.name) {
            for flavor in FrontendFlavor.allCases {
                for minicluster in [false, true] {
                    let manifest = try Self.manifest(host, inventory: inventory, minicluster: minicluster, flavor: flavor)
                    #expect(try Self.parse(manifest, host: host) == manifest)
                }
            }
        }
    }

    @Test("paths chpki never lays out, bad names and the wrong host are refused naming the field",
          arguments: [
              ("etc/ /*", "haproxy", "files[N].path"), ("etc/x;touch X", "haproxy", "files[N].path"),
              ("etc/passwd", "haproxy", "files[N].path"), ("etc/ssl/openssl.cnf", "patroni", "files[N].path"),
              ("etc/ssl/haproxy/../../passwd", "haproxy", "files[N].path"), ("/etc/etcd/pki/ca.pem", "etcd", "files[N].path"),
              ("etc/etcd/pki//ca.pem", "etcd", "files[N].path"), ("etc/ssl/haproxy/.pem", "haproxy", "files[N].path"),
              ("etc/ssl/haproxy/A.pem", "haproxy", "files[N].path"), ("etc/ssl/haproxy/x y.pem", "haproxy", "files[N].path"),
              ("etc/etcd/pki/ca.pem", "patroni", "files[N].path"),
              ("etc/ssl/haproxy/vip.example.com.pem", "x[$(touch /tmp/pwn)]", "files[N].service"),
              ("etc/ssl/haproxy/vip.example.com.pem", "Haproxy", "files[N].service"),
          ])
    func hostileEntriesAreRefused(path: String, service: String, field: String) throws {
        var manifest = try Self.manifest()
        manifest.files.append(.init(path: path, sha256: String(repeating: "0", count: 64), owner: "root", group: "root", mode: "0600",
                                    service: service))
        let error = try #require(Self.refusal(manifest))
        #expect(error.contains("state/x.json: \(field.replacingOccurrences(of: "N", with: "\(manifest.files.count - 1)")):"), "\(error)")
    }

    @Test("field checks: host, services, digests, owners, modes, duplicates, format")
    func fieldChecks() throws {
        let good = try Self.manifest()
        func refused(_ field: String, _ edit: (inout BundleManifest) -> Void, host: String? = nil) {
            var manifest = good
            edit(&manifest)
            let error = Self.refusal(manifest, host: host)
            #expect(error?.contains(": \(field): ") == true, "\(field): \(error ?? "accepted")")
        }
        refused("host") { $0.host = "backend-1;rm" }
        refused("host", { _ in }, host: "backend-2.example.com")
        refused("services[0]") { $0.services[0] = "$(id)" }
        refused("ca_sha256") { $0.caSHA256 = "AB" }
        refused("files[0].sha256") { $0.files[0].sha256 = String(repeating: "G", count: 64) }
        refused("files[0].owner") { $0.files[0].owner = "nobody" }
        refused("files[0].group") { $0.files[0].group = "root;x" }
        refused("files[0].mode") { $0.files[0].mode = "rwx" }
        refused("files[1].path") { $0.files[1] = $0.files[0] }
        refused("directories[0].path") { $0.directories[0].path = "etc" }
        refused("format") { $0.format = 1 }
        // Format 3: every file's role, a root only on a leaf, operations as argv lists and checked health.
        refused("files[0].role") { $0.files[0].role = nil }
        refused("files[0].root") { $0.files[0].role = .config; $0.files[0].root = String(repeating: "a", count: 64) }
        refused("operations") { $0.operations = nil }
        refused("operations.etcd.on_leaf[0]") { $0.operations?["etcd"]?.onLeaf = [[]] }
        refused("operations.etcd.on_trust[1]") { $0.operations?["etcd"]?.onTrust.append(["rm", "-rf\n/"]) }
        refused("operations.etcd.health[0].port") { $0.operations?["etcd"]?.health[0].port = 0 }
        refused("operations.etcd.health[0].cafile") { $0.operations?["etcd"]?.health[0].cafile = "/etc/../shadow" }
        refused("operations.etcd.health[0].server_name") { $0.operations?["etcd"]?.health[0].serverName = "a b" }
        refused("generator") { $0.generator = "other" }
        #expect(throws: ChpkiError.self) { try InstallRecord.parse(Data("{\"generator\": \"chpki\", \"files\": [".utf8), label: "x", host: nil) }
        #expect(throws: ChpkiError.self) { try InstallRecord.parse(Data(count: InstallRecord.sizeLimit + 1), label: "x", host: nil) }
        var missing = ""
        do {
            _ = try InstallRecord.parse(Data(#"{"generator":"chpki","format":2,"host":"a","services":[],"directories":[],"files":[{"path":"etc/etcd/pki/ca.pem"}]}"#.utf8),
                                        label: "x", host: nil)
        } catch { missing = "\(error)" }
        #expect(missing.contains("files[0]."), "\(missing)")
    }

    @Test("a chosen name's wildcard is one component of DNS characters, never more")
    func chosenNames() throws {
        let paths = try InstallPaths.current()
        #expect(paths.fileProblem("etc/ssl/haproxy/cinc-server-cluster.example.com.pem", service: "haproxy") == nil)
        #expect(paths.fileProblem("home/minio-user/.minio/certs/CAs/backend-7.crt", service: "minio") == nil)
        #expect(paths.fileProblem("etc/credentials/x509/redis/server/private_key.pem", service: "redis") == nil)
        #expect(paths.fileProblem("etc/pki/ca-trust/source/anchors/acme-root-ca.pem", service: "trust") == nil)
        #expect(paths.fileProblem("etc/opscode/server.key", service: "nginx") == nil)
        #expect(paths.fileProblem("etc/ssl/haproxy/sub/x.pem", service: "haproxy") != nil)
        #expect(paths.fileProblem("etc/opscode/chef-server.rb", service: "nginx") != nil)
        #expect(paths.fileProblem("etc/credentials/x509/redis/server/../../../../passwd", service: "redis") != nil)
        #expect(paths.directoryProblem("etc/credentials/x509/redis/client", service: "redis") == nil)
        #expect(paths.directoryProblem("etc/ssl", service: "patroni") != nil)
    }

    @Test("diff: same manifest, first install, changed, removed, a service that left; trust first")
    func diff() throws {
        let old = try Self.manifest("backend-1")
        #expect(ManifestDiff(recorded: old, new: old).same)

        let first = ManifestDiff(recorded: nil, new: old)
        #expect(!first.same && first.remove.isEmpty)
        #expect(first.services.first?.name == "trust")
        #expect(Set(first.services.map(\.name)) == Set(old.files.map(\.service)))
        #expect(first.services.allSatisfy { $0.remains })

        var new = old
        let etcd = try #require(new.files.firstIndex { $0.path == "etc/etcd/pki/server.pem" })
        new.files[etcd].sha256 = String(repeating: "1", count: 64)
        let anchor = try #require(new.files.firstIndex { $0.service == "trust" })
        new.files[anchor].mode = "0600"
        new.files.removeAll { $0.service == "minio" }
        new.directories.removeAll { $0.service == "minio" }
        let diff = ManifestDiff(recorded: old, new: new)
        // trust first, then by first changed path: etc/default/minio.tls before etc/etcd/
        #expect(diff.services.map(\.name) == ["trust", "minio", "etcd"])
        #expect(diff.services.first { $0.name == "etcd" }?.why == ["etc/etcd/pki/server.pem (changed)"])
        #expect(diff.services.first { $0.name == "minio" }?.remains == false)
        #expect(diff.remove == old.files.filter { $0.service == "minio" }.map { "/" + $0.path }.sorted())
        #expect(diff.entries.filter { $0.kind == "directory" }.allSatisfy { $0.change == .removed && $0.service == "minio" })

        // a peer's certificate leaves MinIO's CAs/: minio reloads, the file goes
        var peers = old
        peers.files.removeAll { $0.path.hasSuffix("CAs/backend-3.crt") }
        let peerDiff = ManifestDiff(recorded: old, new: peers)
        #expect(peerDiff.remove == ["/home/minio-user/.minio/certs/CAs/backend-3.crt"])
        #expect(peerDiff.services.map(\.name) == ["minio"] && peerDiff.services[0].remains)

        // only the manifest's header changed: install, nothing to reload
        var header = old
        header.caSHA256 = String(repeating: "c", count: 64)
        let headerDiff = ManifestDiff(recorded: old, new: header)
        #expect(!headerDiff.same && headerDiff.entries.isEmpty && headerDiff.services.isEmpty)
    }

    @Test("the fuzz entry point takes anything")
    func fuzzEntry() throws {
        FuzzEntry.fuzzInstallRecord(try Self.manifest().encoded())
        for bytes in ["", "{", "[]", "null", "{\"files\": 1}", String(repeating: "[", count: 10_000)] {
            FuzzEntry.fuzzInstallRecord(Data(bytes.utf8))
        }
    }
}
