import ArgumentParser
import ChpkiCore

struct Bundle: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Lay out the files each service expects, per host, with owners, modes and a manifest.",
        discussion: """
            Writes OUT/<host-fqdn>/ as that host's filesystem root for the named services (default: every \
            service of the inventory), and OUT/<host-fqdn>/MANIFEST.json (path, sha256, owner, group, mode). \
            --tar also writes OUT/<host-fqdn>.tar.gz, owners and modes kept: 'tar -xzpf HOST.tar.gz -C /' as \
            root installs it. Name 'minicluster' to add minicluster's /etc/credentials/x509 layout. Each \
            host's tree is replaced atomically; certificates must have been issued ('chpki issue'). \
            Layouts: docs/bundles.md. Snippets: built-in templates (chpki templates list).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions

    @Argument(help: ArgumentHelp("Services to lay out (default: all in the inventory; minicluster adds its layout).", valueName: "service"), completion: Completions.services)
    var services: [String] = []

    @Option(help: ArgumentHelp("Only this host (FQDN or short name).", valueName: "host"), completion: Completions.hosts) var host: String?
    @Option(help: ArgumentHelp("The output directory (created if missing).", valueName: "dir"), completion: .directory) var out: String
    @Flag(help: "Also write <host>.tar.gz per host.") var tar = false
    @Option(help: "Frontend paths: cinc (/etc/cinc-project) or chef (/etc/opscode).") var flavor: FrontendFlavor = .cinc
    @Option(help: ArgumentHelp("Override directory: a NAME.mustache there replaces the built-in template NAME (else CHPKI_TEMPLATES, else /etc/chpki/templates); it and its files must be root's or yours and not group/other-writable.", valueName: "dir"), completion: .directory)
    var templates: String?
    @Option(help: ArgumentHelp("The install records, <fqdn>.json per host (default: <ca-dir>/installed): who is already an etcd member or in a MinIO pool.", valueName: "dir"), completion: .directory)
    var state: String?

    /// etcd membership commands the run found necessary (set by `run`, for the next step).
    var membershipSteps: [String] = []

    /// The parsed options only: `membershipSteps` is the run's result, not an argument.
    enum CodingKeys: String, CodingKey {
        case global, key, services, host, out, tar, flavor, templates, state
    }

    mutating func run() throws {
        var options = BundleCommand.Options()
        options.services = services
        options.host = host
        options.output = out
        options.tar = tar
        options.flavor = flavor
        options.templates = templates
        options.passphraseFile = key.passphraseFile
        options.state = state
        membershipSteps = try BundleCommand.run(options, settings: global.settings, reporter: global.makeReporter())
    }
}

