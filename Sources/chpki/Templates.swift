import ArgumentParser
import ChpkiCore

struct TemplatesGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "templates",
        abstract: "List the config snippet templates bundles render, or print one to start an override.",
        discussion: """
            The templates are built into chpki. To change one without a rebuild, save it under the same \
            name in an override directory and edit it there: the first of --templates DIR, \
            CHPKI_TEMPLATES, /etc/chpki/templates. A NAME.mustache there replaces the built-in NAME; the \
            other templates stay built in. Example:
              mkdir -p /etc/chpki/templates
              chpki templates show pg_hba.conf > /etc/chpki/templates/pg_hba.conf.mustache
            """,
        subcommands: [TemplatesList.self, TemplatesShow.self]
    )
}

/// The override directory option of the templates commands (bundle has its own of the same name).
struct TemplateDirectoryOption: ParsableArguments {
    @Option(help: ArgumentHelp("Override directory (else CHPKI_TEMPLATES, else /etc/chpki/templates when it exists).", valueName: "dir"), completion: .directory)
    var templates: String?
}

struct TemplatesList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Each template's name and source: built-in, or the override file that replaces it."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var directory: TemplateDirectoryOption

    func run() throws {
        try TemplatesCommand.list(templatesDirectory: directory.templates, settings: global.settings, reporter: global.makeReporter())
    }
}

struct TemplatesShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a template exactly as bundles render it from (the override when there is one)."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var directory: TemplateDirectoryOption

    @Argument(help: ArgumentHelp("The template's name, e.g. pg_hba.conf ('chpki templates list' names them).", valueName: "name"), completion: Completions.templateNames)
    var name: String

    @Flag(name: .customLong("built-in"), help: "Print the built-in text even when an override replaces it.")
    var builtIn = false

    func run() throws {
        try TemplatesCommand.show(name, builtIn: builtIn, templatesDirectory: directory.templates, settings: global.settings,
                                  reporter: global.makeReporter())
    }
}
