import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiReporting
@testable import ChpkiCA
@testable import ChpkiPlatform
@testable import ChpkiOpenSSL

@Suite("what the Reporter prints: control characters escaped, one line per error")
struct ReporterOutputTests {
    final class Sink: @unchecked Sendable {
        var text = ""
    }

    static func reporter(json: Bool = false, out: Sink, err: Sink) -> Reporter {
        Reporter(json: json, quiet: false, verbose: true, interactive: false,
                 standardOutput: { out.text += $0 }, standardError: { err.text += $0 })
    }

    @Test("C0, DEL and C1 become visible escapes; other text is untouched")
    func escapes() {
        #expect(ControlCharacters.escaped("a\nb\r\tc\u{1B}[2J\u{7F}\u{9B}d") == "a\\nb\\r\\tc\\x1b[2J\\x7f\\x9bd")
        #expect(ControlCharacters.escaped("héllo — ok") == "héllo — ok")
        #expect(ControlCharacters.escaped("x\ny\tz", keeping: ControlCharacters.layout) == "x\ny\tz")
    }

    @Test("every way out of the Reporter escapes: line, table cell, note, detail, error")
    func everyChannel() {
        let out = Sink(), err = Sink()
        let reporter = Self.reporter(out: out, err: err)
        reporter.line("host a\nb\u{1B}]0;t\u{07}")
        reporter.table(header: ["HOST"], rows: [["x\ny"]])
        reporter.note("n\u{1B}")
        reporter.detail("d\n")
        reporter.error(ErrorReport(ChpkiError.input(.inventoryInvalidName, file: "c.yml", line: 3, field: "hosts[0].name", "'a\nb' is bad"), database: nil))
        #expect(!out.text.unicodeScalars.contains { ControlCharacters.isControl($0) && $0 != "\n" })
        #expect(!err.text.unicodeScalars.contains { ControlCharacters.isControl($0) && $0 != "\n" })
        #expect(out.text == "host a\\nb\\x1b]0;t\\x07\nHOST\nx\\ny\n")
        #expect(err.text.split(separator: "\n").count == 3)
        #expect(err.text.hasSuffix("chpki: error: c.yml:3: hosts[0].name: 'a\\nb' is bad\n"))
    }

    @Test("--json: the error object on stdout, fields absent when unknown; a failed check adds none")
    func jsonError() throws {
        let out = Sink(), err = Sink()
        let reporter = Self.reporter(json: true, out: out, err: err)
        reporter.error(ErrorReport(ChpkiError.input(.inventoryUnknownField, file: "c.yml", line: 3, field: "k", "bad"), database: nil))
        let object = try #require(JSONSerialization.jsonObject(with: Data(out.text.utf8)) as? [String: [String: Any]])
        #expect(object["error"]?["file"] as? String == "c.yml" && object["error"]?["line"] as? Int == 3)
        #expect(object["error"]?["code"] as? String == "inventory.unknown-field" && object["error"]?["message"] as? String == "c.yml:3: k: bad")
        out.text = ""
        reporter.error(ErrorReport(ChpkiError(.frontendInvalid, problems: ["one", "two"]), database: nil))
        let plain = try #require(JSONSerialization.jsonObject(with: Data(out.text.utf8)) as? [String: [String: Any]])
        #expect(plain["error"]?.keys.sorted() == ["code", "message", "problems"])
        out.text = ""
        reporter.error(ErrorReport(ChpkiError(.checkVerifyFailed, "2 violations"), database: nil))
        #expect(out.text == "")
        // JSON keeps the data; DEL and C1, valid raw in JSON, are written as \u escapes.
        try reporter.emit(["name": "a\u{1B}\u{7F}\u{9B}"])
        #expect(out.text.lowercased().contains("a\\u001b\\u007f\\u009b"))
    }

    @Test("errors chpki did not word itself are worded here, never as a Swift type")
    func mapping() {
        #expect(ErrorReport(POSIXFailure(message: "cannot open x: No such file", code: 2), database: nil).message == "cannot open x: No such file")
        #expect(ErrorReport(Subprocess.Failure.notFound("ssh"), database: nil).message.hasPrefix("ssh: not found"))
        #expect(ErrorReport(AES256GCM.AuthenticationFailure(), database: nil).code == "crypto.authentication-failed")
        #expect(ErrorReport(RegularFile.Failure.missing, database: nil).code == "file.missing")
    }
}
