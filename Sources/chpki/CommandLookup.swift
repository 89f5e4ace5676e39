import ArgumentParser

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
        if let suggestion = closest(to: unknown, among: names) {
            return "'\(unknown)' is not \(what); did you mean '\(suggestion)'? (see '\(path.joined(separator: " ")) --help')"
        }
        return "'\(unknown)' is not \(what) (\(names.joined(separator: ", ")); see '\(path.joined(separator: " ")) --help')"
    }

    /// The name within edit distance 2 (or of which `word` is a prefix), nearest first.
    static func closest(to word: String, among names: [String]) -> String? {
        let scored = names.map { ($0, $0.hasPrefix(word) && word.count >= 2 ? 0 : distance(word, $0)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= min(2, max(1, best.0.count / 3)) else { return nil }
        return best.0
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var rows = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { rows[i][0] = i }
        for j in 0...b.count { rows[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
                }
            }
        }
        return rows[a.count][b.count]
    }
}
