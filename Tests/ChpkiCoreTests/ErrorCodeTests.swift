import Foundation
import GRDB
import Testing
@testable import ChpkiCore
@testable import ChpkiCA
@testable import ChpkiPlatform
@testable import ChpkiOpenSSL

/// The error codes are a contract (docs/errors.md): the doc and `ChpkiError.Code.all` must name
/// the same codes, each code is `area.kebab-name`, and every error type maps to a code.
@Suite("error codes: one list in the code, the same list in docs/errors.md")
struct ErrorCodeDocTests {
    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/errors.md")

    /// The codes of the doc's tables: the first cell of each row, `| `code` | ... |`.
    static func documentedCodes() throws -> [String] {
        let text = try String(contentsOf: document, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("| `") else { return nil }
            let cell = line.dropFirst(3)
            guard let end = cell.firstIndex(of: "`") else { return nil }
            return String(cell[..<end])
        }
    }

    @Test("docs/errors.md lists exactly the codes ChpkiError.Code declares, each once")
    func documentMatchesCode() throws {
        let documented = try Self.documentedCodes()
        let declared = ChpkiError.Code.all.map(\.rawValue)
        #expect(Set(documented).count == documented.count, "a code is documented twice")
        #expect(Set(declared).subtracting(documented).sorted() == [], "codes missing from docs/errors.md")
        #expect(Set(documented).subtracting(declared).sorted() == [], "docs/errors.md documents codes that do not exist")
    }

    @Test("every code is area.kebab-name")
    func codeShape() {
        for code in ChpkiError.Code.all {
            let parts = code.rawValue.split(separator: ".", omittingEmptySubsequences: false)
            #expect(parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" } },
                    "\(code)")
        }
    }

    @Test("the exit status follows from the code: check.* 1, ca.views-stale 3, the rest 2")
    func exitCodes() {
        #expect(ChpkiError(.checkExpiring, "x").exitCode == 1)
        #expect(ChpkiError(.caViewsStale, "x").exitCode == 3)
        #expect(ChpkiError(.inventoryUnknownField, "x").exitCode == 2)
        #expect(ErrorReport(ChpkiError(.checkVerifyFailed, "x"), database: nil).isCheckFailure)
    }

    @Test("equality is on the code alone, so the wording can change")
    func equality() {
        #expect(ChpkiError(.archiveTruncated, "one wording") == ChpkiError(.archiveTruncated, "another"))
        #expect(ChpkiError(.archiveTruncated, "same") != ChpkiError(.archiveCorrupt, "same"))
    }

    @Test("each error type that reaches the entry point gets its code")
    func mappedTypes() {
        #expect(ErrorReport(OpenSSLError(operation: "x", reasons: []), database: nil).code == "openssl.error")
        #expect(ErrorReport(POSIXFailure(message: "m", code: 5), database: nil).code == "system.error")
        #expect(ErrorReport(RootedDirectory.Refusal(path: "/r/x", reason: "symlink"), database: nil).code == "bundle.unsafe-path")
        #expect(ErrorReport(TrustedDirectory.Refusal(path: "/t", reason: "writable by others"), database: nil).code == "template.untrusted")
        #expect(ErrorReport(RegularFile.Failure.tooLarge(size: 9, limit: 1), database: nil).code == "file.too-large")
        #expect(ErrorReport(Subprocess.Failure.notFound("ssh"), database: nil).code == "system.program")
        #expect(ErrorReport(CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "/x/y"]), database: nil).file == "/x/y")
        struct Unexpected: Error {}
        #expect(ErrorReport(Unexpected(), database: nil).code == "internal.bug")
    }

    @Test("a database error names the file and says what happened, not 'see chpki help'")
    func databaseError() throws {
        let report = ErrorReport(DatabaseError(resultCode: .SQLITE_READONLY, message: "attempt to write a readonly database", sql: "INSERT INTO certificates VALUES (?)"),
                                 database: "/ca/ca.db")
        #expect(report.code == "database.error" && report.file == "/ca/ca.db" && report.exitCode == 2)
        #expect(report.message.hasPrefix("/ca/ca.db: SQLite error 8: attempt to write a readonly database (while running INSERT INTO certificates)"))
        #expect(report.message.contains("read-only") && !report.message.contains("chpki help"))
    }
}
