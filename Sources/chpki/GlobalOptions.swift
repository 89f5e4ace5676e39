import ArgumentParser
import ChpkiCore

/// The options every command takes (SPEC §1).
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("ca-dir"), help: ArgumentHelp("The CA directory (env CHPKI_CA_DIR).", valueName: "dir"), completion: .directory)
    var caDirectory: String?

    @Option(name: .customLong("inventory"), help: ArgumentHelp("The cluster inventory (env CHPKI_INVENTORY).", valueName: "file"), completion: .file())
    var inventory: String?

    @Flag(help: "Print one JSON document instead of the human report.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print nothing but errors (and JSON when asked).")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Explain what is being done, on stderr.")
    var verbose = false

    var settings: Settings { Settings(caDirectory: caDirectory, inventory: inventory) }

    func makeReporter() -> Reporter { Reporter(json: json, quiet: quiet, verbose: verbose) }

    static var defaultsHelp: String { "Defaults: --ca-dir \(Settings.defaultCADirectory), --inventory \(Settings.defaultInventory)." }
}

extension KeyType: ExpressibleByArgument {}
extension InitCACommand.NameConstraintsMode: ExpressibleByArgument {}
extension InitCACommand.Options.KDF: ExpressibleByArgument {}
extension CertMode: ExpressibleByArgument {}
extension FrontendFlavor: ExpressibleByArgument {}
extension PasswordEnvelope.Encoding: ExpressibleByArgument {}
