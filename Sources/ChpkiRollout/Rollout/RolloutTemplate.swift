import ChpkiBase
import Foundation

/// A `chpki rollout --copy`/`--run` template: split on whitespace into argv words once, when it is
/// read; a value is substituted inside a word and never split again, so nothing from a plan or a
/// manifest reaches a shell on this machine. On the remote side `{command_sh}` is the one word a
/// remote shell (ssh's) parses, each argument quoted for it.
public struct RolloutTemplate: Sendable, Equatable {
    public let words: [String]

    public static let defaultCopy = "ssh -o BatchMode=yes root@{host} tar -xzpf - -C /"
    public static let defaultRun = "ssh -o BatchMode=yes root@{host} {command_sh}"

    /// `option` names the flag in the refusal.
    public init(_ text: String, option: String, needsCommand: Bool) throws {
        words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
        guard !words.isEmpty else { throw ChpkiError.input(.usageInvalidArgument, file: nil, field: option, "is empty; give a command, e.g. '\(needsCommand ? Self.defaultRun : Self.defaultCopy)'") }
        if words[0].contains("{") {
            throw ChpkiError.input(.usageInvalidArgument, file: nil, field: option, "the program (first word) cannot be a placeholder")
        }
        if needsCommand, !words.contains(where: { $0 == "{command}" || $0.contains("{command_sh}") }) {
            throw ChpkiError.input(.usageInvalidArgument, file: nil, field: option, "has neither {command} nor {command_sh}: the step's command would not run")
        }
        if !needsCommand, words.contains(where: { $0.contains("{command") }) {
            throw ChpkiError.input(.usageInvalidArgument, file: nil, field: option, "{command} and {command_sh} are for --run; the copy command reads the archive on its stdin")
        }
    }

    /// The argv for `host`, with `command` where the template says: `{command}` (a whole word)
    /// becomes the command's words, `{command_sh}` the command quoted as one remote-shell word.
    public func argv(host: String, command: [String] = []) -> [String] {
        var out: [String] = []
        for word in words {
            if word == "{command}" {
                out += command
                continue
            }
            // One left-to-right pass: a substituted value is never scanned again.
            var result = "", rest = Substring(word)
            while let open = rest.firstIndex(of: "{") {
                result += rest[..<open]
                let tail = rest[open...]
                if tail.hasPrefix("{host}") {
                    result += host
                    rest = tail.dropFirst(6)
                } else if tail.hasPrefix("{command_sh}") {
                    result += Self.shellQuoted(command)
                    rest = tail.dropFirst(12)
                } else {
                    result += "{"
                    rest = tail.dropFirst()
                }
            }
            out.append(result + rest)
        }
        return out
    }

    /// Each word quoted for a POSIX shell: plain words as they are, others in single quotes
    /// (a `'` as `'\''`), joined by spaces.
    public static func shellQuoted(_ words: [String]) -> String {
        words.map(shellQuoted).joined(separator: " ")
    }

    public static func shellQuoted(_ word: String) -> String {
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "@%+=:,./_-".unicodeScalars.contains($0)
        }
        return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
