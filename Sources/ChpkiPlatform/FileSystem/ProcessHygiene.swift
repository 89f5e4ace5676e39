import Foundation
internal import CChpkiPOSIX
import ChpkiBase

/// What chpki does to its own process before it touches a secret (SPEC §8).
public enum ProcessHygiene {
    /// RLIMIT_CORE 0 and PR_SET_DUMPABLE 0: no core file can carry a passphrase or key, and no
    /// process of the same user can ptrace chpki or read its memory. Called first in `main`.
    public static func disableCoreDumps() {
        if chpki_disable_core_dumps() != 0 {
            FileHandle.standardError.write(Data("chpki: warning: could not disable core dumps\n".utf8))
        }
    }
}

/// Restores the terminal if the operator interrupts a no-echo prompt (SIGINT/SIGTERM exit 130/143
/// with echo back on), instead of leaving the shell without echo.
enum PromptSignalGuard {
    static func during<T>(descriptor: Int32, original: termios, _ body: () throws -> T) rethrows -> T {
        var saved = original
        chpki_prompt_guard_begin(descriptor, &saved)
        defer { chpki_prompt_guard_end() }
        return try body()
    }
}
