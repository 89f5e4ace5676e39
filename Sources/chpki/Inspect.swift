import ArgumentParser
import ChpkiCore

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise a certificate, private key or CRL file (PEM, or a DER certificate).",
        discussion: """
            Prints subject, issuer, serial, validity, SANs, key usages, name constraints and the SHA-256 \
            fingerprint of each certificate; the format, type and encryption parameters of each key. \
            An encrypted key's type is shown only when --passphrase-file opens it.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The file to inspect.", valueName: "file"), completion: .file())
    var file: String

    @Option(name: .customLong("passphrase-file"), help: ArgumentHelp("Passphrase to open an encrypted key.", valueName: "file"), completion: .file())
    var passphraseFile: String?

    func run() throws {
        try InspectCommand.run(.init(file: file, passphraseFile: passphraseFile), settings: global.settings, reporter: global.makeReporter())
    }
}
