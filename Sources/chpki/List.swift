import ArgumentParser
import ChpkiCore

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every certificate in the CA: host, service, kind, serial, not-after, status.",
        discussion: "--json prints one object per certificate with host, service, kind (server/client/admin/ca), serial, subject, sans, not_after, status (valid/superseded/revoked/expired) and the PEM certificate."
    )

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try ListCommand.run(settings: global.settings, reporter: global.makeReporter())
    }
}
