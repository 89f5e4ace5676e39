import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiBundles
@testable import ChpkiCA

@Suite("snippet rules: what each service must never accept")
struct SnippetRulesTests {
    static var descriptors: [any ServiceBundle] { ServiceBundles.all + [ServiceBundles.credentials] }

    @Test("every built-in template, rendered, passes its service's rules")
    func builtInTemplatesPass() throws {
        let templates = try Templates(explicit: nil, environment: [:], systemDirectory: "/nonexistent/chpki/templates")
        let snippets = Self.descriptors.flatMap(\.snippets)
        #expect(Set(snippets.map(\.template)).isSuperset(of: ["pg_hba.conf", "patroni-tls.yml", "etcd-tls.env", "opensearch-security.yml",
                                                              "haproxy-tls.cfg", "nginx-tls.rb", "minio.tls", "etcd-bootstrap.env"]))
        for snippet in snippets {
            let text = String(decoding: try templates.render(snippet.template, Templates.fuzzContext), as: UTF8.self)
            #expect(snippet.rules(text) == [], "\(snippet.template)")
        }
    }

    @Test("pg_hba.conf: forbidden methods and plain connections from the network, never local ones", arguments: [
        ("host all all 0.0.0.0/0 trust", true),
        ("hostssl all all ::/0 md5", true),
        ("hostssl all all 10.0.0.0 255.0.0.0 password", true),
        ("hostssl all all samenet ident", true),
        ("host all all 10.0.0.0/8 scram-sha-256", true),
        ("hostnossl all all 10.0.0.0/8 cert", true),
        ("include_dir conf.d", true),
        ("host all all 0.0.0.0/0 reject", false),
        ("host all all 0.0.0.0/0 cert", false),
        ("hostssl all all 0.0.0.0/0 scram-sha-256", false),
        ("local all all trust", false),
        ("# host all all 0.0.0.0/0 trust", false),
    ])
    func pgHBA(line: String, refused: Bool) {
        #expect(PatroniBundle.hbaFindings(line + "\n").isEmpty != refused, "\(line)")
    }

    @Test("etcd: flags and environment alike; a missing client-cert auth is a finding without a line")
    func etcd() {
        let findings = EtcdBundle.environmentFindings("--peer-client-cert-auth\n--trusted-ca-file=/ca\n--peer-trusted-ca-file /ca\n")
        #expect(findings == [SnippetFinding(line: 0, "no ETCD_CLIENT_CERT_AUTH=true: etcd would accept clients without a certificate")])
        #expect(EtcdBundle.environmentFindings("ETCD_CLIENT_CERT_AUTH=true\nETCD_PEER_CLIENT_CERT_AUTH=true\nETCD_TRUSTED_CA_FILE=/a\n"
            + "ETCD_PEER_TRUSTED_CA_FILE=/a\nETCD_NAME=x $(id)\nETCD_X=a b\n").map(\.line) == [5, 6])
    }

    /// 12 levels of ten aliases each: a few hundred bytes that expand to 10^12 nodes.
    static let laughs = "a0: &a0 [x]\n" + (1...12).map { level in
        "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ",") + "]\n"
    }.joined()

    @Test("a YAML snippet that expands without end is a finding, found quickly")
    func laughingYAML() {
        #expect(OpenSearchBundle.settingsFindings(Self.laughs).contains(SnippetSyntax.notYAML))
    }

    @Test("the fuzz entry point survives odd bytes")
    func fuzzEntryPoint() {
        let inputs: [Data] = [
            Data(), Data([0xFF, 0xFE, 0x00]), Data("{{#binds}}{{{ip}}}{{/binds}}".utf8), Data("{{#unclosed}}".utf8),
            Data(String(repeating: "[", count: 10_000).utf8), Data("a: &x [*x]\n".utf8),
            Data("host all all\n{{{host}}} 255.255.255.0 trust\n".utf8), Data(count: ReadLimits.template + 1),
            Data(Self.laughs.utf8),
        ]
        for input in inputs { Templates.fuzzTemplateRender(input) }
    }

    @Test("an override directory writable by others, or a file of another user, is refused")
    func untrustedOverrides() throws {
        let directory = try TemplatesTests.scratch()
        try Data("# x\n".utf8).write(to: URL(fileURLWithPath: directory + "/pg_hba.conf.mustache"))
        chmod(directory, 0o755)
        chmod(directory + "/pg_hba.conf.mustache", 0o644)
        _ = try Templates(explicit: directory, environment: [:])
        chmod(directory + "/pg_hba.conf.mustache", 0o666)
        #expect(throws: ChpkiError.self) { try Templates(explicit: directory, environment: [:]) }
        chmod(directory + "/pg_hba.conf.mustache", 0o644)
        chmod(directory, 0o777)
        #expect(throws: ChpkiError.self) { try Templates(explicit: directory, environment: [:]) }
    }
}
