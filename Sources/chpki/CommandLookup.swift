import ArgumentParser
import ChpkiCore

/// The command tree as the operator types it: which command a command line names, and the closest
/// subcommand to a mistyped one.
enum CommandLookup {
    static func name(of command: ParsableCommand.Type) -> String {
        command.configuration.commandName ?? command._commandName
    }

    /// The command `arguments` name (help words and options skipped), and the words that did.
    static func resolve(_ arguments: [String]) -> (command: ParsableCommand.Type, path: [String], unknown: String?) {
        var command: ParsableCommand.Type = Chpki.self
        var path = ["chpki"]
        for argument in arguments {
            if argument.hasPrefix("-") { break }   // subcommand names come before any option
            if argument == "help" && command == Chpki.self { continue }
            guard !command.configuration.subcommands.isEmpty else { break }
            guard let next = command.configuration.subcommands.first(where: { name(of: $0) == argument }) else {
                return (command, path, argument)
            }
            command = next
            path.append(argument)
        }
        return (command, path, nil)
    }

    /// For a command line that failed to parse because a subcommand name is wrong: one line naming
    /// it and, when one is close, the subcommand meant (`chpki isue` → did you mean 'issue'?).
    static func unknownSubcommandMessage(_ arguments: [String]) -> String? {
        let (command, path, unknown) = resolve(arguments)
        guard let unknown else { return nil }
        let names = command.configuration.subcommands.map(name(of:))
        let what = path.count == 1 ? "a chpki command" : "a '\(path.joined(separator: " "))' subcommand"
        if let suggestion = KeySuggestion.nearest(to: unknown, among: names) {
            return "'\(unknown)' is not \(what); did you mean '\(suggestion)'? (see '\(path.joined(separator: " ")) --help')"
        }
        return "'\(unknown)' is not \(what) (\(names.joined(separator: ", ")); see '\(path.joined(separator: " ")) --help')"
    }
}
