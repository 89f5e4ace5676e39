import ArgumentParser
import ChpkiCore

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check issued certificates, or a laid-out bundle, against chpki's rules; exit 1 on any violation.",
        discussion: """
            Without --bundle: every valid certificate in the CA matches its key, is signed by the issuing CA, \
            is not expired, and (with an inventory) has the inventory's subject and SANs. With --bundle DIR: \
            every host tree in DIR against docs/bundles.md and what each service accepts (key formats, MinIO's \
            single PEM block, etcd's EKUs and IP SANs, PostgreSQL key modes, HAProxy's order, SAN coverage, \
            key/certificate pairs, validity, issuer), the rendered config snippets against what each service \
            must never accept (pg_hba.conf trust/password/md5 from the network, etcd without client-cert auth, \
            plain http, TLS below 1.2, ...: docs/bundles.md), and each file and directory against the tree's \
            var/lib/chpki/MANIFEST.json (sha256, mode). --installed, on a host: DIR (default /) is that \
            host's installed root; owners and groups are checked by name against this host's users, a missing \
            service user is one warning line (its files stay root-owned), and on / the roots must be in the \
            activated system trust bundle. One line per violation.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions

    @Option(help: ArgumentHelp("A bundle output directory, or one host tree (with --installed: the host's root, default /).", valueName: "dir"), completion: .directory)
    var bundle: String?

    @Flag(help: "Check the bundle as installed on this host: owners, groups, activated trust (DIR default /).")
    var installed = false

    func run() throws {
        try VerifyCommand.run(bundle: bundle, installed: installed, passphraseFile: key.passphraseFile, settings: global.settings,
                              reporter: global.makeReporter())
    }
}
