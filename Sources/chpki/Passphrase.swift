import ArgumentParser
import ChpkiCore

/// The root passphrase option of the commands that may open the root key (SPEC §6 "Two secrets").
struct RootKeyOptions: ParsableArguments {
    @Option(name: .customLong("root-passphrase-file"), help: ArgumentHelp("Read the root passphrase from the first line of this file (else CHPKI_ROOT_PASSPHRASE, else a prompt when stdin is a terminal). Needed only when the root signs: growth beyond the name constraints, rotate-ca.", valueName: "file"), completion: .file())
    var rootPassphraseFile: String?

    /// `settings` with the root passphrase's file, for the core to find when the root key is needed.
    func applied(to settings: Settings) -> Settings {
        var settings = settings
        settings.rootPassphraseFile = rootPassphraseFile
        return settings
    }
}

struct PassphraseGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passphrase",
        abstract: "Change the root or the operations passphrase of the CA.",
        subcommands: [PassphraseChange.self]
    )
}

extension CASecret: ExpressibleByArgument {}

struct PassphraseChange: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "change",
        abstract: "Re-wrap the root key (--which root) or the issuing keys and the leaf-key data key (--which operations) under a new passphrase.",
        discussion: """
            The old passphrase comes from its usual sources (operations: --passphrase-file, CHPKI_CA_PASSPHRASE; \
            root: --root-passphrase-file, CHPKI_ROOT_PASSPHRASE; else a prompt), the new one from \
            --new-passphrase-file, else CHPKI_NEW_PASSPHRASE, else a prompt (twice). Every key is opened with \
            the old passphrase first; all are re-wrapped in one transaction, and the files of the CA directory \
            follow. On a CA made with one passphrase, --which root gives the root its own (its old passphrase \
            is then the operations one), and --which operations changes the one passphrase of every key.

            Example: chpki passphrase change --which root --passphrase-file ~/.chpki-pass --new-passphrase-file /media/usb/root-pass
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions
    @OptionGroup var rootKey: RootKeyOptions

    @Option(help: "Which passphrase to change: root or operations.") var which: CASecret

    @Option(name: .customLong("new-passphrase-file"), help: ArgumentHelp("Read the new passphrase from the first line of this file (else CHPKI_NEW_PASSPHRASE, else a prompt, twice).", valueName: "file"), completion: .file())
    var newPassphraseFile: String?

    func run() throws {
        var options = PassphraseCommand.Options()
        options.which = which
        options.passphraseFile = key.passphraseFile
        options.newPassphraseFile = newPassphraseFile
        try PassphraseCommand.change(options, settings: rootKey.applied(to: global.settings), reporter: global.makeReporter())
    }
}
