import Foundation
import ChpkiBase

/// Runs another program: the one place chpki starts a process. `run` collects what it printed
/// (`ansible-inventory --list`, SPEC §2 `ansible_inventory:`); `runAttached` passes its output
/// through and feeds its stdin (the rollout's steps, `Subprocess+Attached.swift`).
///
/// The child gets chpki's environment without any `CHPKI_*` variable, so a passphrase given as
/// `CHPKI_CA_PASSPHRASE` never reaches it, and stdin from /dev/null.
public enum Subprocess {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: Data
        public var stderr: Data
    }

    public enum Failure: Error, Sendable {
        /// No such program on PATH (or not executable).
        case notFound(String)
        /// The program could not be started.
        case cannotStart(String, String)
        /// It printed more than the limit on stdout or stderr, or the pipe failed: it was stopped.
        case output(String, String)
    }

    /// The absolute path of `name` on PATH, or `name` itself when it holds a slash and is executable.
    public static func find(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for directory in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") where !directory.isEmpty {
            let candidate = Path.join(String(directory), name)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
               FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        return nil
    }

    /// Runs `program` (a name looked up on PATH, or a path) with `arguments` and `extraEnvironment`
    /// added, and waits for it. Both outputs are read while it runs, so neither pipe can fill up,
    /// each at most `outputLimit` bytes: past that the program is killed (SPEC §8, bounded reads).
    public static func run(_ program: String, _ arguments: [String], extraEnvironment: [String: String] = [:],
                           outputLimit: Int) throws -> Result {
        guard let executable = find(program) else { throw Failure.notFound(program) }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CHPKI_") }
        environment.merge(extraEnvironment) { _, new in new }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            throw Failure.cannotStart(executable, "\(error)")
        }
        let stderrReader = BackgroundRead(err.fileHandleForReading, limit: outputLimit, process: process)
        let stdout = BackgroundRead.read(out.fileHandleForReading, limit: outputLimit, process: process)
        let stderr = stderrReader.wait()
        process.waitUntilExit()
        for (name, outcome) in [("stdout", stdout), ("stderr", stderr)] {
            switch outcome {
            case .data: continue
            case .tooLarge: throw Failure.output(executable, "printed more than \(ReadLimits.format(outputLimit)) on \(name)")
            case let .failed(code): throw Failure.output(executable, "reading its \(name): \(String(cString: strerror(code)))")
            }
        }
        guard case let .data(output) = stdout, case let .data(errors) = stderr else { throw Failure.output(executable, "no output") }
        return Result(status: process.terminationStatus, stdout: output, stderr: errors)
    }

    /// Reads a pipe to its end (at most `limit` bytes) on another thread.
    private final class BackgroundRead: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        // Written once by the reading thread before `done` is signalled, read after waiting on it.
        private var outcome = RegularFile.ReadOutcome.data(Data())

        init(_ handle: FileHandle, limit: Int, process: Process) {
            DispatchQueue.global().async { [self] in
                outcome = Self.read(handle, limit: limit, process: process)
                done.signal()
            }
        }

        /// The pipe's bytes; past `limit` (or on an error) the process is killed, which closes
        /// its other pipe too, so nothing waits for it.
        static func read(_ handle: FileHandle, limit: Int, process: Process) -> RegularFile.ReadOutcome {
            let outcome = RegularFile.readToEnd(handle.fileDescriptor, limit: limit)
            if case .data = outcome { return outcome }
            kill(process.processIdentifier, SIGKILL)
            return outcome
        }

        func wait() -> RegularFile.ReadOutcome {
            done.wait()
            return outcome
        }
    }
}
