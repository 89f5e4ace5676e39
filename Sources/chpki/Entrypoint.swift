import ArgumentParser
import ChpkiCore
import Foundation

/// Parses, runs, and maps every failure to SPEC §1's exit codes: 2 with one line on stderr for bad
/// input or a refusal, 1 for a failed check, 0 otherwise.
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
        do {
            try command.run()
            NextStep.report(after: command)
        } catch let error as ChpkiError {
            // -q on a check (expiring, verify): the exit status is the whole answer.
            if error.kind == .checkFailed, (command as? TakesGlobalOptions)?.global.quiet == true { exit(error.exitCode) }
            fail(error.message, code: error.exitCode)
        } catch let error as OpenSSLError {
            fail(error.description, code: 2)
        } catch let error as POSIXFailure {
            fail(error.description, code: 2)
        } catch {
            finish(error, arguments: arguments)
        }
    }

    /// Help, version and usage errors from the argument parser (and ExitCode from a command).
    static func finish(_ error: Error, arguments: [String]) -> Never {
        let code = Chpki.exitCode(for: error)
        if code == .success {
            print(Chpki.fullMessage(for: error))
            exit(0)
        }
        if error is ExitCode { exit(code.rawValue) }
        if let unknown = CommandLookup.unknownSubcommandMessage(arguments) { fail(unknown, code: 2) }
        // A usage error from the argument parser: one line, and where to read more.
        let message = Chpki.message(for: error).split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
        fail("\(message) (see 'chpki help')", code: 2)
    }

    /// One `chpki: error:` line per line of `message` (a refusal may list several problems).
    static func fail(_ message: String, code: Int32) -> Never {
        let lines = message.split(separator: "\n").map { "chpki: error: \($0)\n" }.joined()
        FileHandle.standardError.write(Data(lines.utf8))
        exit(code)
    }
}
