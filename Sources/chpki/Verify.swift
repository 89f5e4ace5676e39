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
            key/certificate pairs, validity, issuer). One line per violation.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions

    @Option(help: ArgumentHelp("A bundle output directory, or one host tree.", valueName: "dir")) var bundle: String?

    func run() throws {
        try VerifyCommand.run(bundle: bundle, passphraseFile: key.passphraseFile, settings: global.settings, reporter: global.makeReporter())
    }
}
