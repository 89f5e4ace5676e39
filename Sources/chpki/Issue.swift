import ArgumentParser
import ChpkiCore

struct Issue: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Issue every certificate the inventory implies that is missing, changed or due.",
        // The generated line ends in a bare `<subcommand>`, as if one were required: the inventory
        // run is this command's own, a subcommand only for one certificate outside it.
        usage: """
            chpki issue [--dry-run] [--prune] [--passphrase-file <file>] [--ca-dir <dir>] [--inventory <file>] [--json] [--quiet] [--verbose]
              chpki issue server|client|admin [<options>]
            """,
        discussion: """
            Without a subcommand: compares the inventory with the CA database and prints one line per \
            certificate: issued (new), reissued (names, usages or key type changed), renewed (within \
            renew_before of expiry; the key is kept), unchanged, and retire for live certificates the inventory \
            no longer wants (hosts or services gone, or replaced with other names); --prune revokes those and \
            publishes the CRLs. A second run issues nothing. The batch is signed on every core and recorded \
            in one transaction: it commits whole or not at all.

            When the inventory names something the issuing intermediate's name constraints do not cover \
            (a new host's short name, a new network), the plan starts with 'intermediate new covers ...': \
            the root signs a new issuing intermediate (its passphrase opens root.key once); existing \
            certificates and every host's trust files stay as they are (docs/growth.md).

            Subcommands issue one certificate outside the inventory: 'issue server', 'issue client', \
            'issue admin'. See docs/issuance.md for every certificate's names and usages.
            """,
        subcommands: [IssueServer.self, IssueClient.self, IssueAdmin.self]
    )

    // The inventory run is this command's own (not a default subcommand), so its options show in
    // 'chpki help issue', the man page and the completions.
    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions
    @OptionGroup var rootKey: RootKeyOptions

    @Flag(name: .customLong("dry-run"), help: "Print the plan; change nothing.")
    var dryRun = false

    @Flag(help: "Revoke the certificates the plan shows as 'retire' (hosts and services gone: cessationOfOperation; replaced with other names: superseded) and publish the CRLs.")
    var prune = false

    /// How many live certificates the run left waiting for `--prune` (set by `run`, for the next step).
    var waitingToRetire = 0

    /// The parsed options only: `waitingToRetire` is the run's result, not an argument.
    enum CodingKeys: String, CodingKey {
        case global, key, rootKey, dryRun, prune
    }

    mutating func run() throws {
        var options = IssueCommand.Options()
        options.dryRun = dryRun
        options.prune = prune
        options.passphraseFile = key.passphraseFile
        waitingToRetire = try IssueCommand.run(options, settings: rootKey.applied(to: global.settings), reporter: global.makeReporter())
    }
}

/// The passphrase option of commands that open the CA key.
struct CAKeyOptions: ParsableArguments {
    @Option(name: .customLong("passphrase-file"), help: ArgumentHelp("Read the CA passphrase from the first line of this file (else CHPKI_CA_PASSPHRASE, else a prompt).", valueName: "file"), completion: .file())
    var passphraseFile: String?
}

struct OneOffOutput: ParsableArguments {
    @Option(help: ArgumentHelp("Also write <stem>.crt (0644) and <stem>.key (0600, PKCS#8) into this directory (created if missing).", valueName: "dir"), completion: .directory)
    var out: String?
}

/// The shared run of `issue server|client|admin`: each only says which profile and file stem.
protocol OneOffIssue: ParsableCommand {
    var global: GlobalOptions { get }
    var key: CAKeyOptions { get }
    var rootKey: RootKeyOptions { get }
    var output: OneOffOutput { get }
    func profile(settings: Settings) throws -> (profile: CertificateProfile, fileStem: String)
}

extension OneOffIssue {
    func run() throws {
        let settings = rootKey.applied(to: global.settings)
        let (profile, stem) = try profile(settings: settings)
        try IssueCommand.runOneOff(profile, fileStem: stem, output: output.out, passphraseFile: key.passphraseFile,
                                   settings: settings, reporter: global.makeReporter())
    }
}

struct IssueServer: OneOffIssue {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "One server certificate, with the same SAN rule as the inventory's.",
        discussion: "SANs: <service>.<domain> (when an inventory gives the domain), the short name, the FQDN, each --san, localhost; each --ip, 127.0.0.1 and ::1. Files: <service>-<host>.crt/.key."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions
    @OptionGroup var rootKey: RootKeyOptions
    @OptionGroup var output: OneOffOutput

    @Option(help: "The service name (a DNS label).", completion: Completions.services) var service: String
    @Option(help: "The host's FQDN.", completion: Completions.hosts) var host: String
    @Option(name: .customLong("ip"), help: "An IP address of the host (repeatable).") var ips: [String] = []
    @Option(name: .customLong("san"), help: "An extra DNS name (repeatable).") var sans: [String] = []
    @Option(name: .customLong("key"), help: ArgumentHelp("Key type (default: the inventory's for this service).", valueName: "type"))
    var keyType: KeyType?
    @Option(help: "EKU: server, client or both (default: the inventory's server_cert_mode, else server).")
    var mode: CertMode?

    func profile(settings: Settings) throws -> (profile: CertificateProfile, fileStem: String) {
        let profile = try OneOffProfiles.server(service: service, host: host, ips: ips, sans: sans, keyType: keyType, mode: mode,
                                                inventory: try settings.inventoryIfPresent())
        return (profile, "\(service)-\(profile.identity.name)")
    }
}

struct IssueClient: OneOffIssue {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "One client certificate with CN SERVICE@HOST and no SAN.",
        discussion: "Files: SERVICE@HOST.crt/.key. PostgreSQL's pg_ident.conf maps such a CN to a role."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions
    @OptionGroup var rootKey: RootKeyOptions
    @OptionGroup var output: OneOffOutput

    @Argument(help: ArgumentHelp("The client's CN, service@host.", valueName: "service@host")) var name: String
    @Option(name: .customLong("key"), help: ArgumentHelp("Key type (default: the inventory's for this service).", valueName: "type"))
    var keyType: KeyType?

    func profile(settings: Settings) throws -> (profile: CertificateProfile, fileStem: String) {
        let profile = try OneOffProfiles.client(name: name, keyType: keyType, inventory: try settings.inventoryIfPresent())
        return (profile, profile.identity.name)
    }
}

struct IssueAdmin: OneOffIssue {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "The OpenSearch admin client certificate (its DN is admin_dn).",
        discussion: "Subject: the inventory subject with CN=<name>; EKU clientAuth; the opensearch service's key type. Files: <name>.crt/.key."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions
    @OptionGroup var rootKey: RootKeyOptions
    @OptionGroup var output: OneOffOutput

    @Option(help: "The admin CN (default: the inventory's admin.name).") var name: String?

    func profile(settings: Settings) throws -> (profile: CertificateProfile, fileStem: String) {
        let profile = try OneOffProfiles.admin(name: name, inventory: try settings.requireInventory())
        return (profile, profile.identity.name)
    }
}
