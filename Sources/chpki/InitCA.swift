import ArgumentParser
import ChpkiCore

struct InitCA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-ca",
        abstract: "Create the offline root CA and the intermediate that signs leaves, keys encrypted at rest.",
        discussion: """
            Writes root.pem, root.key (PKCS#8, PBES2/scrypt unless --no-passphrase), ca.db, index.txt and \
            crl.pem into the CA directory (created 0700; files 0600). Refuses, changing nothing, if a CA \
            is already there. By default it also creates an intermediate (ec-p256, pathlen 0) that signs \
            the leaves and CRLs; the root key then signs only new intermediates and rotations \
            (--no-intermediate: the root signs leaves). With an inventory present, the CA that signs leaves \
            is name-constrained to the cluster's domain, host short names, IP networks (/24, /64) and \
            loopback (--name-constraints none to skip); 'chpki issue' widens them for a grown inventory \
            with a new intermediate the root signs, never a new root (docs/growth.md).

            Two secrets: the operations passphrase (--passphrase-file, else CHPKI_CA_PASSPHRASE, else a prompt \
            without echo) wraps the intermediate's key and seals every leaf key stored in ca.db (AES-256-GCM \
            under a scrypt-wrapped data key); the root passphrase (--root-passphrase-file, else \
            CHPKI_ROOT_PASSPHRASE, else a prompt when stdin is a terminal) wraps root.key alone, so the weekly \
            renewal never holds the root. Each must be at least 8 characters and is never accepted on the \
            command line. Without a root passphrase one passphrase wraps every key (said in the report; \
            'chpki passphrase change --which root' splits it later). With --no-passphrase every key is stored in clear.

            Example: chpki init-ca --subject "CN=Cinc Root CA,O=MyCompany,C=US" --passphrase-file ~/.chpki-pass --root-passphrase-file /media/usb/root-pass
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Root subject, RFC 4514 (\"CN=Root,O=Acme,C=US\") or OpenSSL form (\"/C=US/O=Acme/CN=Root\"). Default: the inventory's ca.common_name with its O and C, or CN=chpki Root CA.", valueName: "dn"))
    var subject: String?

    @Option(help: ArgumentHelp("Root key type: \(KeyType.allNames). Default: the inventory's ca.key, or ec-p384.", valueName: "type"))
    var key: KeyType?

    @Option(help: ArgumentHelp("Root lifetime, e.g. 10y, 3650d or 6h (s, min, h, d, w, mo, y; m is months). Default: the inventory's ca.validity, or 10y.", valueName: "period"))
    var validity: String?

    @Option(name: .customLong("name-constraints"), help: "auto: constrain the CA that signs leaves (the intermediate) to the inventory's names and networks when an inventory exists; none: no constraints.")
    var nameConstraints: InitCACommand.NameConstraintsMode = .auto

    @Flag(name: .customLong("no-intermediate"), help: "Let the root sign the leaves itself (no intermediate). The name constraints then sit on the root, so growth beyond them needs a new root (rotate-ca).")
    var noIntermediate = false

    /// The default since intermediates sign leaves; still accepted so older scripts keep working.
    @Flag(help: .hidden)
    var intermediate = false

    func validate() throws {
        if noIntermediate && intermediate { throw ValidationError("--intermediate and --no-intermediate contradict each other") }
    }

    @Option(name: .customLong("passphrase-file"), help: ArgumentHelp("Read the passphrase from the first line of this file.", valueName: "file"), completion: .file())
    var passphraseFile: String?

    @Option(name: .customLong("root-passphrase-file"), help: ArgumentHelp("Read the root passphrase (it wraps root.key alone) from the first line of this file (else CHPKI_ROOT_PASSPHRASE, else a prompt when stdin is a terminal; without any, one passphrase wraps every key).", valueName: "file"))
    var rootPassphraseFile: String?

    @Flag(name: .customLong("no-passphrase"), help: "Store the CA key unencrypted (explicit; not recommended).")
    var noPassphrase = false

    @Option(help: "Key-encryption KDF: scrypt (N=16384 r=8 p=5) or pbkdf2 (HMAC-SHA256, 600,000 iterations).")
    var kdf: InitCACommand.Options.KDF = .scrypt

    func run() throws {
        var options = InitCACommand.Options()
        options.subject = subject
        options.key = key
        options.validity = validity
        options.nameConstraints = nameConstraints
        options.intermediate = !noIntermediate
        options.passphraseFile = passphraseFile
        options.rootPassphraseFile = rootPassphraseFile
        options.noPassphrase = noPassphrase
        options.kdf = kdf
        try InitCACommand.run(options, settings: global.settings, reporter: global.makeReporter())
    }
}
