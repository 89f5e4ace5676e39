import ArgumentParser
import ChpkiCore

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the whole pipeline on the built-in example cluster (reference 000), for a first look.",
        discussion: "Everything goes into the output directory; re-running replaces an earlier demo there, never anything else."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Where to write the demo.", valueName: "dir"), completion: .directory)
    var out: String = DemoCommand.defaultOutput

    func run() throws {
        try DemoCommand.run(output: out, reporter: global.makeReporter())
    }
}
