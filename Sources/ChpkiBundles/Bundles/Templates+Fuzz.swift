import ChpkiPlatform
import Foundation
import Mustache

extension Templates {
    /// The context every fuzzed template renders with: each value a built-in template uses, as a
    /// small cluster would give it (lists and flags included, so sections take both branches).
    nonisolated(unsafe) static let fuzzContext: [String: Any] = [
        "host": "backend-1.example.com", "ip": "10.0.0.1", "ip_is_loopback": false,
        "etcd_hosts": "10.0.0.1:2379,10.0.0.2:2379", "replication_user": "patroni",
        "ident_lines": "chpki      patroni@backend-1.example.com  patroni\n",
        "initial_cluster": "backend-1.example.com=https://10.0.0.1:2380", "initial_cluster_state": "new",
        "initial_cluster_token": "chpki-example.com",
        "nodes_dn": "  - \"CN=backend-1.example.com,O=MyCompany\"\n", "admin_dn": "  - \"CN=admin,O=MyCompany\"\n",
        "volumes": "https://backend-1.example.com:9900/data/minio",
        "directory": "/etc/cinc-project", "config": "/etc/cinc-project/cinc-server.rb",
        "binds": [["ip": "10.0.0.100", "names": "a, b", "fqdns": ["a.example.com", "b.example.com"]]],
    ]

    /// Fuzz entry point (Fuzz/, scripts/fuzz): `data` as the text of a template override, parsed
    /// and rendered like one, then every service's snippet rules run on the result. Must never
    /// crash, whatever the bytes: a template that is not UTF-8, does not parse or is larger than
    /// an override may be is simply refused, as `Templates(explicit:)` refuses it.
    public static func fuzzTemplateRender(_ data: Data) {
        guard data.count <= ReadLimits.template, let text = String(data: data, encoding: .utf8),
              let template = try? MustacheTemplate(string: text) else { return }
        let rendered = template.render(fuzzContext)
        let services: [any ServiceBundle] = ServiceBundles.all + [ServiceBundles.credentials]
        for snippet in services.flatMap(\.snippets) {
            _ = snippet.rules(rendered)
        }
    }
}
