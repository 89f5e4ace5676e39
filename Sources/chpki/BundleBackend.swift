import ArgumentParser
import ChpkiCore

struct BundleBackend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle-backend",
        abstract: "Carry the Chef Backend cluster secrets to a joining backend, checked and encrypted.",
        discussion: """
            Reads ROOT/etc/chef-backend/chef-backend-secrets.json (ROOT is / on the bootstrap backend, \
            after 'chef-backend-ctl create-cluster'), checks that it is a JSON object holding \
            postgresql.db_superuser_password, postgresql.replication_password, etcd.initial_cluster_token \
            and elasticsearch.cluster_name (flat, or in a veil file), and writes one bundle with a \
            MANIFEST.json, 0600, in the same format as bundle-frontend. Any problem: exit 2, one line, \
            no bundle.

            --encrypt writes a CMS EnvelopedData with a password recipient, which \
            'openssl cms -decrypt -pwri_password pass:... -inform PEM' opens. The passphrase comes from \
            --passphrase-file, else CHPKI_BUNDLE_PASSPHRASE, else a prompt without echo (asked twice).

            Example: chpki bundle-backend --from / --out backend-secrets.cms --encrypt
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var output: SecretBundleOutputArguments

    func run() throws {
        try BundleBackendCommand.run(output.options, settings: global.settings, reporter: global.makeReporter())
    }
}

struct InstallBackend: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-backend",
        abstract: "Check a Chef Backend secrets bundle and install it on a joining backend.",
        discussion: """
            Decrypts an encrypted bundle (passphrase from --passphrase-file, else CHPKI_BUNDLE_PASSPHRASE, \
            else a prompt), verifies the MANIFEST.json checksum and the secrets, then writes \
            ROOT/etc/chef-backend/chef-backend-secrets.json root:root 0600 atomically (creating \
            etc/chef-backend 0755 if missing), never through a symlink. An existing file with other \
            content is refused unless --force, which keeps the old file beside it. --dry-run writes \
            nothing. Then run 'chef-backend-ctl join-cluster LEADER -s /etc/chef-backend/chef-backend-secrets.json' \
            and delete the bundle file (reference 001 Step 3.5).

            Example: chpki install-backend backend-secrets.cms --root /
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var install: SecretBundleInstallArguments

    func run() throws {
        try InstallBackendCommand.run(install.options, settings: global.settings, reporter: global.makeReporter())
    }
}
