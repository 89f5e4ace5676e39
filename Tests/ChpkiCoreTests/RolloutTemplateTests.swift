import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// `chpki rollout --copy/--run` templates: split once into argv, values substituted inside words
/// and never split or scanned again, `{command_sh}` one word a POSIX shell reads back as the argv.
@Suite("rollout: templates")
struct RolloutTemplateTests {
    @Test("the defaults: ssh with the host, the command as one remote-shell word")
    func defaults() throws {
        let run = try RolloutTemplate(RolloutTemplate.defaultRun, option: "--run", needsCommand: true)
        #expect(run.argv(host: "db-1.example.com", command: ["systemctl", "restart", "etcd"])
            == ["ssh", "-o", "BatchMode=yes", "root@db-1.example.com", "systemctl restart etcd"])
        let copy = try RolloutTemplate(RolloutTemplate.defaultCopy, option: "--copy", needsCommand: false)
        #expect(copy.argv(host: "db-1") == ["ssh", "-o", "BatchMode=yes", "root@db-1", "tar", "-xzpf", "-", "-C", "/"])
    }

    @Test("{command} is the argv's words; a value holding braces or spaces is never expanded or split")
    func substitution() throws {
        let run = try RolloutTemplate("env H={host} {command}", option: "--run", needsCommand: true)
        #expect(run.argv(host: "h", command: ["a b", "{host}", "$(x)"]) == ["env", "H=h", "a b", "{host}", "$(x)"])
        let sh = try RolloutTemplate("ssh {host} {command_sh}", option: "--run", needsCommand: true)
        #expect(sh.argv(host: "h", command: ["echo", "{host}"]) == ["ssh", "h", "echo '{host}'"])
    }

    @Test("shell quoting reads back as the same words", arguments: [
        ["rm", "-f", "--", "/etc/ssl/a b.pem"], ["echo", "it's", "$(touch x)", "`id`", "a;b", ""], ["x\ny", "\\", "*"],
    ])
    func quoting(words: [String]) throws {
        let line = RolloutTemplate.shellQuoted(words)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "eval \"set -- $1\"; for w in \"$@\"; do printf '%s\\0' \"$w\"; done", "sh", line]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let back = out.split(separator: 0, omittingEmptySubsequences: false).dropLast().map { String(decoding: $0, as: UTF8.self) }
        #expect(back == words, "\(line)")
    }

    @Test("templates that cannot work are refused naming the option")
    func refusals() {
        for (text, needsCommand) in [("", true), ("   ", false), ("{host} x {command}", true), ("ssh {host} true", true),
                                     ("tar {command}", false)] {
            #expect(throws: ChpkiError.self) { try RolloutTemplate(text, option: "--run", needsCommand: needsCommand) }
        }
    }
}
