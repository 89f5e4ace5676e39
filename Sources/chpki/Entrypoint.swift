import ArgumentParser
import ChpkiCore
import Foundation

/// Parses, runs, and maps every failure to SPEC §1's exit codes: 2 with one line on stderr for bad
/// input or a refusal, 1 for a failed check, 0 otherwise. Every error goes out through
/// `Reporter.error` (escaped, one line per problem, and the JSON error object under --json), with
/// its code from `ErrorReport` (docs/errors.md): usage errors here, every other type there.
@main
enum Entrypoint {
    static func main() {
        // Before anything can hold a secret: no core dumps, not ptrace-able, /proc/PID/mem root-only.
        ProcessHygiene.disableCoreDumps()
        // Everything chpki creates is private unless a bundle asks for another mode explicitly.
        umask(0o077)
        let arguments = Array(CommandLine.arguments.dropFirst())
        var command: ParsableCommand
        do {
            command = try Chpki.parseAsRoot(arguments)
        } catch {
            finish(error, arguments: arguments)
        }
        let global = (command as? TakesGlobalOptions)?.global
        do {
            try command.run()
            NextStep.report(after: command)
        } catch let error where String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
            // `chpki help X` runs a help command that throws its help; a validation error from a command.
            finish(error, arguments: arguments)
        } catch {
            let report = ErrorReport(error, database: global.map { Path.join($0.settings.caDirectory.path, CADatabase.fileName) })
            // -q on a check (expiring, verify): the exit status is the whole answer.
            if report.isCheckFailure, global?.quiet == true { exit(report.exitCode) }
            fail(report, json: global?.json ?? false)
        }
    }

    /// Help, version and usage errors from the argument parser.
    static func finish(_ error: Error, arguments: [String]) -> Never {
        let code = Chpki.exitCode(for: error)
        if code == .success {
            print(Chpki.fullMessage(for: error))
            exit(0)
        }
        if error is ExitCode { exit(code.rawValue) }
        // The options were not parsed: --json is asked for when it is among the arguments.
        let json = arguments.prefix { $0 != "--" }.contains("--json")
        if let unknown = CommandLookup.unknownSubcommandMessage(arguments) {
            fail(ErrorReport(code: .usageUnknownCommand, problems: [unknown]), json: json)
        }
        // A usage error from the argument parser: one line, and where to read more.
        let message = Chpki.message(for: error).split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
        fail(ErrorReport(code: .usageInvalidArgument, problems: ["\(message) (see 'chpki help')"]), json: json)
    }

    static func fail(_ report: ErrorReport, json: Bool) -> Never {
        Reporter(json: json, quiet: false, verbose: false).error(report)
        exit(report.exitCode)
    }
}
