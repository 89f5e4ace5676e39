import ChpkiCA
import ChpkiInventory
import Foundation

/// HAProxy on every balancer: one PEM per VIP (leaf first, then the chain, then the key: HAProxy
/// takes the first certificate as the leaf) and the bind lines that serve them by SNI.
public struct HAProxyBundle: ServiceBundle {
    public let name = NamingRules.haproxyService
    static let directory = "etc/ssl/haproxy"
    static let settings = "etc/haproxy/chpki-tls.cfg"

    static func pem(_ vip: VIP) -> String { "\(directory)/\(vip.fqdn).pem" }

    public func prepare(_ service: Service, facts: ClusterFacts) throws -> ServiceFacts {
        // One bind per address: HAProxy chooses among the crt arguments of a single bind by SNI;
        // separate binds on one address are separate sockets that the kernel picks at random.
        var addresses: [String] = []
        var vipsByAddress: [String: [VIP]] = [:]
        for vip in facts.inventory.vips {
            for address in vip.ips.map(\.description) {
                if vipsByAddress[address] == nil { addresses.append(address) }
                vipsByAddress[address, default: []].append(vip)
            }
        }
        return ServiceFacts(context: [
            "binds": addresses.map { address -> [String: Any] in
                let vips = vipsByAddress[address] ?? []
                return ["ip": address, "names": vips.map(\.name).joined(separator: ", "), "fqdns": vips.map(\.fqdn)]
            },
        ])
    }

    public func directories(_ service: Service, facts: ClusterFacts) -> [BundleDirectory] {
        [BundleDirectory(Self.directory, mode: 0o700, owner: "root", service: name)]
    }

    public func files(for host: Host, _ service: Service, shared: ServiceFacts, facts: ClusterFacts) throws -> [BundleFile] {
        var files: [BundleFile] = []
        for vip in facts.inventory.vips {
            let leaf = try facts.leaf(NamingRules.vipProfile(vip: vip, balancer: host, service: service, inventory: facts.inventory).identity)
            files.append(BundleFile(Self.pem(vip), leaf.chainAndKeyPEM, mode: 0o600, owner: "root", service: name, issued: leaf.notBefore,
                                    role: .leaf))
        }
        files.append(BundleFile(Self.settings, try facts.render("haproxy-tls.cfg", shared.context(["host": host.name])),
                                mode: 0o644, owner: "root", service: name))
        return files
    }

    /// A graceful reload rereads every crt file; the balancers need no quorum. Health: each VIP's
    /// name served on its address (wherever the VIP is at that moment), checked against the root.
    /// Each balancer has its own leaf per VIP, and a VIP's address answers from whichever balancer
    /// holds it: only a lone balancer's check can expect its own file to be served.
    public func operations(for host: Host, _ service: Service, facts: ClusterFacts) -> ServiceOperations {
        let reload = [ServiceOperations.systemctl("reload", name)]
        let alone = facts.hosts(of: service).count == 1
        let checks = facts.inventory.vips.compactMap { vip in
            vip.ips.first.map { HealthCheck(.tls, address: $0.description, port: 443, serverName: vip.fqdn, cafile: TrustBundle.currentAnchor(facts),
                                            leaf: alone ? "/" + Self.pem(vip) : nil) }
        }
        return ServiceOperations(onLeaf: reload, onTrust: reload, health: checks)
    }

    public func check(_ checks: inout BundleChecks, service: String) {
        for file in checks.files.list(Self.directory) where file.hasSuffix(".pem") {
            let path = "\(Self.directory)/\(file)"
            let blocks = checks.files.blocks(path)
            guard blocks.first?.label == "CERTIFICATE" else {
                checks.report(path, "the first PEM block is \(blocks.first?.label ?? "missing"); HAProxy needs the leaf certificate first")
                continue
            }
            guard blocks.contains(where: { $0.label.contains("PRIVATE KEY") }) else {
                checks.report(path, "holds no private key; HAProxy needs it in the same file")
                continue
            }
            checks.leaf(path, key: checks.files.key(path), names: [String(file.dropLast(4))])
        }
    }

    public var snippets: [Snippet] { [Snippet(template: "haproxy-tls.cfg", paths: [Self.settings], rules: Self.settingsFindings)] }

    /// The bind lines: every `bind` terminates TLS (`ssl`), no protocol older than TLS 1.2, and
    /// nothing that stops HAProxy verifying a certificate (`verify none` on a server,
    /// `ssl-server-verify none`, `ca-ignore-err`/`crt-ignore-err`).
    @Sendable static func settingsFindings(_ text: String) -> [SnippetFinding] {
        var findings: [SnippetFinding] = []
        for (number, line) in SnippetSyntax.lines(text) {
            let words = SnippetSyntax.words(line).map { $0.lowercased() }
            func after(_ word: String) -> String? {
                words.firstIndex(of: word).flatMap { $0 + 1 < words.count ? words[$0 + 1] : nil }
            }
            if words.first == "bind", !words.contains("ssl") {
                findings.append(SnippetFinding(line: number, "a bind without 'ssl' serves plain TCP"))
            }
            for word in ["force-sslv3", "force-tlsv10", "force-tlsv11"] where words.contains(word) {
                findings.append(SnippetFinding(line: number, "'\(word)': TLS older than 1.2"))
            }
            for word in ["ssl-min-ver", "ssl-max-ver"] {
                if let version = after(word), SnippetSyntax.isOldTLS(version) {
                    findings.append(SnippetFinding(line: number, "'\(word) \(version)': TLS older than 1.2"))
                }
            }
            if after("verify") == "none", words.first == "server" || words.first == "default-server" {
                findings.append(SnippetFinding(line: number, "'verify none': HAProxy would not verify the server's certificate"))
            }
            if words.first == "ssl-server-verify", after("ssl-server-verify") == "none" {
                findings.append(SnippetFinding(line: number, "'ssl-server-verify none': HAProxy would verify no server's certificate"))
            }
            for word in ["ca-ignore-err", "crt-ignore-err"] where words.contains(word) {
                findings.append(SnippetFinding(line: number, "'\(word)': certificate verification errors would be ignored"))
            }
        }
        return findings
    }
}
