import ArgumentParser
import ChpkiCore

struct BundleFrontend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle-frontend",
        abstract: "Collect a bootstrapped frontend's secret files into one checked archive.",
        discussion: """
            Reads, under ROOT (/ on the frontend itself), the files another frontend needs (SPEC §5): \
            for --flavor cinc /etc/cinc-project/{cinc-server.rb, dark_launch_features.json, pivotal.pem, \
            pivotal.rb, private-chef.sh, private-cinc-secrets.json, webui_priv.pem, webui_pub.pem}, \
            /var/opt/cinc-project/bootstrapped and /var/opt/cinc-project/upgrades/migration-level; for \
            --flavor chef the same under /etc/opscode (chef-server.rb, private-chef-secrets.json) and \
            /var/opt/opscode. Checks them (the veil secrets file decrypts, pivotal.pem is \
            chef-server.superuser_key, webui_pub.pem is the public half of webui_priv.pem, migration-level \
            is {"major":M,"minor":N}, bootstrapped exists, JSON parses) and writes a tar.gz with a \
            MANIFEST.json (path, sha256, owner, group, mode), 0600. Any problem: exit 2, one line each, \
            no archive. Secrets are never printed; keys are named by the SHA-256 of their public half.

            --encrypt writes a CMS EnvelopedData with a password recipient instead, which stock \
            OpenSSL opens: 'openssl cms -decrypt -binary -inform PEM -in frontend.cms -pwri_password \
            PASSPHRASE -out frontend.tar.gz' (the passphrase itself: OpenSSL 3.0 takes it literally, \
            not as pass:/file:/env:). The passphrase comes from \
            --passphrase-file, else CHPKI_BUNDLE_PASSPHRASE, else a prompt without echo (asked twice); \
            at least 8 characters.

            --compare ROOT_A ROOT_B says whether two frontends agree (same secrets, keys, migration \
            level, marker, copied configuration), naming what differs: exit 0 agree, 1 differ.

            Examples:
              chpki bundle-frontend --from / --out frontend.cms --encrypt
              chpki bundle-frontend --compare /mnt/frontend-1 /mnt/frontend-2
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var output: SecretBundleOutputArguments

    @Option(help: "cinc (/etc/cinc-project, /var/opt/cinc-project) or chef (/etc/opscode, /var/opt/opscode).")
    var flavor: FrontendFlavor = .cinc

    @Option(name: .customLong("compare"), parsing: .upToNextOption, help: ArgumentHelp("Compare two frontend roots instead of bundling.", valueName: "root-a root-b"), completion: .directory)
    var compare: [String] = []

    func run() throws {
        var options = BundleFrontendCommand.Options()
        options.output = output.options
        options.flavor = flavor
        options.compare = compare
        try BundleFrontendCommand.run(options, settings: global.settings, reporter: global.makeReporter())
    }
}

struct InstallFrontend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-frontend",
        abstract: "Check a frontend bundle and lay its files out on a new frontend.",
        discussion: """
            Decrypts an encrypted bundle (passphrase from --passphrase-file, else CHPKI_BUNDLE_PASSPHRASE, \
            else a prompt), verifies every MANIFEST.json checksum, checks the files as bundle-frontend \
            does, then under ROOT creates missing directories (e.g. /var/opt/cinc-project/upgrades) and \
            writes each file atomically with the mode of SPEC §5's table, root:root when run as root \
            (a manifest asking for another mode, setuid/setgid, group/other write, another owner or an \
            unknown path is refused); no symlink under ROOT is followed; bootstrapped is written last. An existing file with other content is refused unless --force, \
            which keeps the old file beside it as NAME.chpki-backup-<UTC time>. --dry-run prints what \
            would change and writes nothing. A truncated or altered bundle, or a wrong passphrase: exit 2, \
            nothing written. Then run 'cinc-server-ctl reconfigure' (or chef-server-ctl).

            Example: chpki install-frontend frontend.cms --root /
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var install: SecretBundleInstallArguments

    func run() throws {
        try InstallFrontendCommand.run(install.options, settings: global.settings, reporter: global.makeReporter())
    }
}

/// The arguments every bundle command takes (bundle-frontend, bundle-backend).
struct SecretBundleOutputArguments: ParsableArguments {
    @Option(help: ArgumentHelp("The filesystem root of the host whose secrets to bundle (/ on that host itself).", valueName: "root"), completion: .directory)
    var from: String?

    @Option(help: ArgumentHelp("The bundle file to write (0600, replaced atomically).", valueName: "file"), completion: .file())
    var out: String?

    @Flag(help: "Write a CMS password envelope (PWRI) instead of a plain tar.gz.")
    var encrypt = false

    @Option(help: ArgumentHelp("With --encrypt: pem (-----BEGIN CMS-----) or der.", valueName: "pem|der"))
    var format: PasswordEnvelope.Encoding = .pem

    @Option(name: .customLong("passphrase-file"), help: ArgumentHelp("With --encrypt: read the passphrase from the first line of this file (else CHPKI_BUNDLE_PASSPHRASE, else a prompt).", valueName: "file"), completion: .file())
    var passphraseFile: String?

    var options: SecretBundleOutput {
        var options = SecretBundleOutput()
        options.from = from
        options.out = out
        options.encrypt = encrypt
        options.encoding = format
        options.passphraseFile = passphraseFile
        return options
    }
}

/// The arguments every install command takes (install-frontend, install-backend).
struct SecretBundleInstallArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("The bundle (tar.gz or CMS) written by bundle-frontend or bundle-backend.", valueName: "file"), completion: .file())
    var file: String

    @Option(help: ArgumentHelp("The new host's filesystem root.", valueName: "root"), completion: .directory)
    var root = "/"

    @Flag(name: .customLong("dry-run"), help: "Print what would change; write nothing.")
    var dryRun = false

    @Flag(help: "Replace existing files that differ, keeping each old file as NAME.chpki-backup-<time>.")
    var force = false

    @Option(name: .customLong("passphrase-file"), help: ArgumentHelp("Passphrase of an encrypted bundle, first line of this file.", valueName: "file"), completion: .file())
    var passphraseFile: String?

    var options: SecretBundleInstallOptions {
        var options = SecretBundleInstallOptions(file: file)
        options.root = root
        options.dryRun = dryRun
        options.force = force
        options.passphraseFile = passphraseFile
        return options
    }
}
