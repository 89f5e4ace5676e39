import ChpkiCA
import ChpkiInventory
import ChpkiSecretBundles
import Foundation

/// The frontends' nginx: server certificate (with chain) and key in the flavour's config directory
/// (`etc/cinc-project`, or `etc/opscode` for Chef: `FrontendFlavor`), and the two settings lines
/// for cinc-server.rb / chef-server.rb.
public struct NginxBundle: ServiceBundle {
    public let name = "nginx"

    static func certificate(_ flavor: FrontendFlavor) -> String { "\(flavor.configDirectory)/server.pem" }
    static func key(_ flavor: FrontendFlavor) -> String { "\(flavor.configDirectory)/server.key" }
    static func settings(_ flavor: FrontendFlavor) -> String { "\(flavor.configDirectory)/\(flavor.serverConfigName).tls" }

    public func files(for host: Host, _ service: Service, shared: ServiceFacts, facts: ClusterFacts) throws -> [BundleFile] {
        let flavor = facts.flavor
        let server = try facts.server(service, host)
        let snippet = try facts.render("nginx-tls.rb", [
            "host": host.name, "directory": "/" + flavor.configDirectory, "config": "/\(flavor.configDirectory)/\(flavor.serverConfigName)",
        ])
        return [
            BundleFile(Self.certificate(flavor), server.chainPEM, mode: 0o644, owner: "root", service: name, issued: server.notBefore,
                       role: .leaf),
            BundleFile(Self.key(flavor), server.keyPEM, mode: 0o600, owner: "root", service: name, role: .key),
            BundleFile(Self.settings(flavor), snippet, mode: 0o644, owner: "root", service: name),
        ]
    }

    /// Cinc/Chef run nginx under their own supervisor: reconfigure renders the settings and
    /// restarts it (`cinc-server-ctl`, or `chef-server-ctl` for the chef flavour). Frontends share no
    /// quorum. Health: the host's name served on 443, checked against the current root's anchor,
    /// presenting the host's server.pem.
    public func operations(for host: Host, _ service: Service, facts: ClusterFacts) -> ServiceOperations {
        let reconfigure = [[facts.flavor == .chef ? "chef-server-ctl" : "cinc-server-ctl", "reconfigure"]]
        return ServiceOperations(onLeaf: reconfigure, onTrust: reconfigure, health: [
            HealthCheck(.tls, address: ClusterFacts.address(of: host), port: 443, serverName: host.name, cafile: TrustBundle.currentAnchor(facts),
                        leaf: "/" + Self.certificate(facts.flavor)),
        ])
    }

    /// Whichever flavour the tree was laid out for.
    public func check(_ checks: inout BundleChecks, service: String) {
        let flavors = FrontendFlavor.allCases.filter { checks.files.exists(Self.certificate($0)) }
        if flavors.isEmpty {
            checks.report(Self.certificate(.cinc), "missing (nor \(Self.certificate(.chef)))")
        }
        for flavor in flavors {
            checks.leaf(Self.certificate(flavor), key: checks.files.key(Self.key(flavor)), names: [checks.host])
        }
    }

    public var snippets: [Snippet] {
        [Snippet(template: "nginx-tls.rb", paths: FrontendFlavor.allCases.map(Self.settings), rules: Self.settingsFindings)]
    }

    /// A settings line: `nginx['name'] = <literal>` where the literal is a single-quoted string
    /// (no interpolation), a number, true/false, or a list of single-quoted strings.
    nonisolated(unsafe) static let setting = /^nginx\['[a-z0-9_]+'\]\s*=\s*('[^'\\]*'|[0-9]+|true|false|\[\s*('[^'\\]*'\s*,?\s*)*\])$/

    /// cinc-server-ctl reconfigure runs this snippet as Ruby, as root: only `nginx[...] = literal`
    /// lines, and `ssl_protocols` without anything older than TLS 1.2.
    @Sendable static func settingsFindings(_ text: String) -> [SnippetFinding] {
        var findings: [SnippetFinding] = []
        for (number, line) in SnippetSyntax.lines(text) {
            guard line.wholeMatch(of: setting) != nil else {
                findings.append(SnippetFinding(line: number, "not an nginx['name'] = 'value' setting: cinc-server-ctl reconfigure runs this file as Ruby, as root"))
                continue
            }
            if line.hasPrefix("nginx['ssl_protocols']") {
                let value = line.split(separator: "=", maxSplits: 1).last.map(String.init) ?? ""
                for word in value.split(whereSeparator: { " '[],".contains($0) }) where SnippetSyntax.isOldTLS(String(word)) {
                    findings.append(SnippetFinding(line: number, "ssl_protocols allows \(word): TLS older than 1.2"))
                }
            }
        }
        return findings
    }
}
