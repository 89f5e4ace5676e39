import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ChpkiBase

/// The controlling terminal, for the one thing chpki asks interactively: a passphrase, never echoed.
public enum Terminal {
    /// True when stderr is a terminal: progress and prompts are for a person watching.
    public static var standardErrorIsATerminal: Bool { isatty(STDERR_FILENO) == 1 }

    /// True when stdin is a terminal: only then is a passphrase asked for (a script gets a refusal, never a hang).
    public static var standardInputIsATerminal: Bool { isatty(STDIN_FILENO) == 1 }

    /// Reads a line without echo from the controlling terminal; `alternatives` (the file option and
    /// variable that would have given it) is named when there is no terminal to ask on.
    package static func readSecret(prompt: String, alternatives: String) throws -> [UInt8] {
        let descriptor = standardInputIsATerminal ? open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC) : -1
        guard descriptor >= 0 else {
            throw ChpkiError.input(.passphraseMissing, file: nil, field: "passphrase", "no passphrase given and no terminal to ask on: use \(alternatives)")
        }
        defer { close(descriptor) }
        var original = termios()
        guard tcgetattr(descriptor, &original) == 0 else { throw POSIXFailure.last("cannot read terminal settings") }
        var silent = original
        silent.c_lflag &= ~tcflag_t(ECHO)
        silent.c_lflag |= tcflag_t(ICANON)
        _ = prompt.withCString { write(descriptor, $0, strlen($0)) }
        var bytes: [UInt8] = []
        // A Ctrl-C while echo is off restores the terminal before the process exits.
        try PromptSignalGuard.during(descriptor: descriptor, original: original) {
            guard tcsetattr(descriptor, TCSAFLUSH, &silent) == 0 else { throw POSIXFailure.last("cannot turn off echo") }
            defer {
                tcsetattr(descriptor, TCSAFLUSH, &original)
                _ = write(descriptor, "\n", 1)
            }
            var byte: UInt8 = 0
            while read(descriptor, &byte, 1) == 1, byte != UInt8(ascii: "\n") {
                bytes.append(byte)
            }
            byte = 0
        }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return bytes
    }
}
