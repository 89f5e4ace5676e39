import Foundation
import Testing
import Yams
@testable import ChpkiCore
@testable import ChpkiCA

/// NodesDN (`chpki nodes-dn`): the nodes_dn list is every OpenSearch host's DN in the order the
/// plugin prints DNs (CN first, the inventory's subject after it, escaped as `Rdn.escapeValue`
/// does), the admin DN beside it, a refusal when a node's entry would match the admin, and YAML
/// that opensearch.yml can hold. The DNs are checked against the certificates chpki issues.
@Suite("nodes_dn")
struct NodesDNTests {
    static let yaml = """
        domain: example.com
        subject: {OU: Search, O: MyCompany, L: MyCity, ST: MyState, C: US}
        hosts:
          - {name: backend-1.example.com, ips: [10.0.0.1], groups: [backend]}
          - {name: backend-2.example.com, ips: [10.0.0.2], groups: [backend]}
          - {name: frontend-1.example.com, ips: [10.0.0.11], groups: [frontend]}
        services:
          opensearch: {hosts: backend, server_cert_mode: both}
          nginx: {hosts: frontend}
        admin: {name: admin}
        """

    static func nodesDN(_ yaml: String = yaml) throws -> NodesDN {
        try NodesDN(inventory: try CATestSupport.inventory(yaml))
    }

    @Test("one entry per OpenSearch host, in inventory order, CN first")
    func entries() throws {
        let result = try Self.nodesDN()
        #expect(result.nodesDN == [
            "CN=backend-1.example.com,OU=Search,O=MyCompany,L=MyCity,ST=MyState,C=US",
            "CN=backend-2.example.com,OU=Search,O=MyCompany,L=MyCity,ST=MyState,C=US",
        ])
        #expect(result.adminDN == ["CN=admin,OU=Search,O=MyCompany,L=MyCity,ST=MyState,C=US"])
    }

    @Test("hosts of other services are not nodes")
    func onlyOpenSearchHosts() throws {
        #expect(try !Self.nodesDN().nodesDN.contains { $0.contains("frontend-1") })
    }

    @Test("without a subject the DN is the CN alone")
    func noSubject() throws {
        let result = try Self.nodesDN(Self.yaml.replacingOccurrences(of: "subject: {OU: Search, O: MyCompany, L: MyCity, ST: MyState, C: US}\n", with: ""))
        #expect(result.nodesDN == ["CN=backend-1.example.com", "CN=backend-2.example.com"])
        #expect(result.adminDN == ["CN=admin"])
    }

    @Test("the subject's attributes come in the plugin's order whatever order the inventory wrote them in")
    func attributeOrder() throws {
        let shuffled = Self.yaml.replacingOccurrences(of: "{OU: Search, O: MyCompany, L: MyCity, ST: MyState, C: US}",
                                                      with: "{C: US, ST: MyState, OU: Search, L: MyCity, O: MyCompany}")
        #expect(try Self.nodesDN(shuffled).nodesDN == Self.nodesDN().nodesDN)
    }

    @Test("special characters are escaped as javax.naming.ldap.Rdn.escapeValue does")
    func escaping() throws {
        let yaml = Self.yaml.replacingOccurrences(of: "{OU: Search, O: MyCompany, L: MyCity, ST: MyState, C: US}",
                                                  with: "{O: \"Acme, Inc.\", OU: \"R+D <lab>\", C: US}")
        let result = try Self.nodesDN(yaml)
        #expect(result.nodesDN[0] == #"CN=backend-1.example.com,OU=R\+D \<lab\>,O=Acme\, Inc.,C=US"#)
        #expect(OpenSearchDN.escape(##"a=b;c"d\e#f"##) == ##"a\=b\;c\"d\\e\#f"##)
        #expect(OpenSearchDN.escape(" padded ") == #"\ padded\ "#)
        #expect(OpenSearchDN.escape("in side") == "in side")
    }

    @Test("an inventory without OpenSearch is refused naming services")
    func noOpenSearch() throws {
        let yaml = Self.yaml.replacingOccurrences(of: "  opensearch: {hosts: backend, server_cert_mode: both}\n", with: "")
        let error = CATestSupport.refusal { _ = try Self.nodesDN(yaml) }
        #expect(error?.kind == .refused)
        #expect(error?.field == "services")
        #expect(error?.file == "cluster.yml")
    }

    @Test("another service can be asked for")
    func otherService() throws {
        let result = try NodesDN(inventory: try CATestSupport.inventory(Self.yaml), service: "nginx")
        #expect(result.nodesDN == ["CN=frontend-1.example.com,OU=Search,O=MyCompany,L=MyCity,ST=MyState,C=US"])
    }

    @Test("an admin whose DN a node entry matches (the plugin compares without case) is refused")
    func adminMatchedByNode() throws {
        let yaml = Self.yaml.replacingOccurrences(of: "admin: {name: admin}", with: "admin: {name: BACKEND-1.EXAMPLE.COM}")
        // Refused by the inventory reader (a host's name) or by NodesDN itself: never a list that makes a node an admin.
        let error = CATestSupport.refusal { _ = try NodesDN(inventory: try CATestSupport.inventory(yaml)) }
        #expect(error?.kind == .refused)
        #expect(error?.field == "admin.name")
    }

    @Test("the plugin's matcher: exact without case, globs with * and ?")
    func matcher() {
        #expect(OpenSearchDN.matches(pattern: "CN=node-1,C=US", "cn=NODE-1,c=us"))
        #expect(!OpenSearchDN.matches(pattern: "CN=node-1,C=US", "CN=node-10,C=US"))
        #expect(OpenSearchDN.matches(pattern: "CN=node-*,C=US", "CN=node-10,C=US"))
        #expect(OpenSearchDN.matches(pattern: "CN=node-?,C=US", "CN=node-1,C=US"))
        #expect(!OpenSearchDN.matches(pattern: "CN=node-?,C=US", "CN=node-10,C=US"))
        #expect(OpenSearchDN.matches(pattern: "*", "anything"))
        #expect(!OpenSearchDN.matches(pattern: "", "x"))
    }

    @Test("the YAML block quotes every DN, escaping backslashes and quotes for YAML")
    func yamlBlock() throws {
        let result = try Self.nodesDN()
        #expect(result.yaml == """
            plugins.security.nodes_dn:
              - "CN=backend-1.example.com,OU=Search,O=MyCompany,L=MyCity,ST=MyState,C=US"
              - "CN=backend-2.example.com,OU=Search,O=MyCompany,L=MyCity,ST=MyState,C=US"
            plugins.security.authcz.admin_dn:
              - "CN=admin,OU=Search,O=MyCompany,L=MyCity,ST=MyState,C=US"

            """)
        #expect(NodesDN.quote(#"O=A\, B"q""#) == #""O=A\\, B\"q\"""#)
    }

    @Test("the YAML is valid YAML that reads back to the same lists")
    func yamlParses() throws {
        let yaml = Self.yaml.replacingOccurrences(of: "{OU: Search, O: MyCompany, L: MyCity, ST: MyState, C: US}",
                                                  with: "{O: \"Acme, \\\"Inc\\\"\", C: US}")
        let result = try Self.nodesDN(yaml)
        let parsed = try Yams.load(yaml: result.yaml) as? [String: [String]]
        #expect(parsed?["plugins.security.nodes_dn"] == result.nodesDN)
        #expect(parsed?["plugins.security.authcz.admin_dn"] == result.adminDN)
        #expect(result.nodesDN[0].contains(#"O=Acme\, \"Inc\""#))
    }

    @Test("the JSON keys are nodes_dn and admin_dn")
    func json() throws {
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(try Self.nodesDN())) as! [String: Any]
        #expect(Set(object.keys) == ["nodes_dn", "admin_dn"])
        #expect((object["nodes_dn"] as? [String])?.count == 2)
    }

    @Test("each nodes_dn entry is the subject of the certificate chpki issues that node, as openssl prints it RFC 2253")
    func matchesIssuedCertificates() throws {
        let directory = try CATestSupport.newCA()
        let inventory = try CATestSupport.inventory(Self.yaml)
        let issued = try CATestSupport.issue(directory, inventory)
        let result = try NodesDN(inventory: inventory)
        let work = try CATestSupport.temporaryDirectory("nodesdn")
        var seen: [String] = []
        for leaf in issued where leaf.item.profile.identity.service == Service.openSearch {
            let path = try CATestSupport.file(leaf.signed.pem, named: "leaf.pem", in: work)
            let (status, output) = try CATestSupport.tool(["openssl", "x509", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253"])
            #expect(status == 0)
            seen.append(output.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "subject=", with: ""))
            try FileManager.default.removeItem(atPath: path)
        }
        #expect(Set(seen).isSuperset(of: Set(result.nodesDN)))
        #expect(Set(seen).isSuperset(of: Set(result.adminDN)))
    }
}
