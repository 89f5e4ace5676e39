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
            BundleFile(Self.certificate(flavor), server.chainPEM, mode: 0o644, owner: "root", service: name, issued: server.notBefore),
            BundleFile(Self.key(flavor), server.keyPEM, mode: 0o600, owner: "root", service: name),
            BundleFile(Self.settings(flavor), snippet, mode: 0o644, owner: "root", service: name),
        ]
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
}
