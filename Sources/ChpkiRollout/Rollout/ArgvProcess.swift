import ChpkiBase
import ChpkiBundles
import ChpkiPlatform
import Foundation

/// Runs one argv of a rollout step on this machine (ssh, tar, a site's wrapper) and waits for it:
/// the program looked up on PATH, then started by ChpkiPlatform's `Subprocess.runAttached` (no
/// shell, no `CHPKI_*` variable, its output on chpki's stderr, `input` on its stdin); here only
/// the rollout's wording of what went wrong.
enum ArgvProcess {
    /// The exit status, or a signal as 128+N like a shell reports it.
    static func run(_ argv: [String], input: Data?) throws -> Int32 {
        guard let program = argv.first, let executable = Subprocess.find(program) else {
            throw ChpkiError(.checkRolloutFailed, "\(argv.first.map(InstallPaths.shown) ?? "(empty)"): no such program on PATH")
        }
        do {
            return try Subprocess.runAttached(executable, Array(argv.dropFirst()), input: input)
        } catch let .cannotStart(path, reason) {
            throw ChpkiError(.checkRolloutFailed, "\(path): cannot start: \(reason)")
        } catch {
            throw ChpkiError(.checkRolloutFailed, "\(executable): cannot start: \(error)")
        }
    }
}
