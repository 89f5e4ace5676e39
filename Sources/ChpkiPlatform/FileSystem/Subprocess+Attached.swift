import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ChpkiBase

extension Subprocess {
    /// Runs `executable` (a path, as `find` gives it) with `arguments` and waits for it: no shell,
    /// chpki's environment without `CHPKI_*` (a passphrase never reaches it), both its outputs on
    /// chpki's stderr (stdout stays chpki's own, e.g. a `--json` document), and `input` written to
    /// its stdin from another thread, so neither side blocks (no input: /dev/null). A program that
    /// exits before reading its stdin costs an exit status, not chpki (SIGPIPE is taken on the
    /// writing thread only). Returns the exit status, or a signal as 128+N as a shell reports it.
    /// What the rollout runs on this machine (ssh, tar, a site's wrapper).
    public static func runAttached(_ executable: String, _ arguments: [String], input: Data?) throws(Failure) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CHPKI_") }
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError
        let pipe = input.map { _ in Pipe() }
        process.standardInput = pipe ?? FileHandle.nullDevice
        do { try process.run() } catch {
            throw .cannotStart(executable, "\(error)")
        }
        if let pipe, let input {
            let writer = pipe.fileHandleForWriting.fileDescriptor
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                // A copy command that exits before reading its stdin must cost an exit status, not
                // chpki (PipeSignal: blocked on this thread only, never inherited by a command).
                PipeSignal.blocked {
                    input.withUnsafeBytes { raw in
                        var offset = 0
                        while offset < raw.count {
                            let count = Glibc.write(writer, raw.baseAddress! + offset, raw.count - offset)
                            if count < 0 && errno == EINTR { continue }
                            if count <= 0 { break }
                            offset += count
                        }
                    }
                }
                try? pipe.fileHandleForWriting.close()
                done.signal()
            }
            process.waitUntilExit()
            done.wait()
        } else {
            process.waitUntilExit()
        }
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}
