import ArgumentParser
import ChpkiCore

struct NodesDNList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes-dn",
        abstract: "Print plugins.security.nodes_dn and authcz.admin_dn for opensearch.yml.",
        discussion: "The strings are computed as the OpenSearch security plugin computes a certificate's principal (X500Principal.toString() parsed by javax.naming.ldap.LdapName, most specific RDN first, no spaces, Rdn's escaping of ,=+<>#;\"\\). Refuses an inventory whose admin DN a nodes_dn entry would match."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "The service whose hosts are the nodes.") var service = "opensearch"

    func run() throws {
        try NodesDNCommand.run(service: service, settings: global.settings, reporter: global.makeReporter())
    }
}
