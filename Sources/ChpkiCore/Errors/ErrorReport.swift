import Foundation
import GRDB

/// Any error a command ends with, worded for the operator: the lines `chpki: error:` prints and,
/// under `--json`, the `{"error": {...}}` object on stdout. Every error type chpki throws is
/// mapped here, in one place, so none reaches the operator as a Swift type name.
///
/// `code` is a stable string per kind of error (provisional until the error codes are designed);
/// `file`, `line` and `field` are absent when unknown.
public struct ErrorReport: Encodable, Sendable, Equatable {
    public var code: String
    public var file: String?
    public var line: Int?
    public var field: String?
    public var message: String
    /// Each problem, one `chpki: error:` line each (usually one).
    public var problems: [String]
    public var exitCode: Int32

    enum CodingKeys: String, CodingKey {
        case code, file, line, field, message, problems
    }

    /// The code of a check that ran and failed (exit 1): its own report is the JSON document.
    public static let checkFailed = "check_failed"

    public init(code: String, file: String? = nil, line: Int? = nil, field: String? = nil, problems: [String], exitCode: Int32 = 2) {
        self.code = code
        self.file = file
        self.line = line
        self.field = field
        self.problems = problems
        self.message = problems.joined(separator: "\n")
        self.exitCode = exitCode
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(code, forKey: .code)
        try container.encodeIfPresent(file, forKey: .file)
        try container.encodeIfPresent(line, forKey: .line)
        try container.encodeIfPresent(field, forKey: .field)
        try container.encode(message, forKey: .message)
        if problems.count > 1 { try container.encode(problems, forKey: .problems) }
    }

    /// The report of `error`; `database` is the CA database the command used, named when SQLite fails.
    public init(_ error: Error, database: String?) {
        switch error {
        case let error as ChpkiError:
            self.init(code: error.kind == .checkFailed ? Self.checkFailed : (error.file != nil || error.field != nil ? "invalid_input" : "refused"),
                      file: error.file, line: error.line, field: error.field, problems: error.problems, exitCode: error.exitCode)
        case let error as OpenSSLError:
            self.init(code: "openssl", problems: [error.description])
        case let error as POSIXFailure:
            self.init(code: "system", problems: [error.description])
        case let error as RootedDirectory.Refusal:
            self.init(code: "unsafe_path", file: error.path, problems: [error.description])
        case let error as RegularFile.Failure:
            let reason: String
            switch error {
            case .missing: reason = "a file chpki needs is missing"
            case let .notRegular(kind): reason = "a file chpki reads is a \(kind), not a regular file"
            case let .unreadable(why): reason = "a file chpki reads cannot be read: \(why)"
            case .tooLarge: reason = "a file chpki reads is \(error.reason)"
            }
            self.init(code: "file", problems: [reason])
        case let error as Subprocess.Failure:
            switch error {
            case let .notFound(program): self.init(code: "program", problems: ["\(program): not found on PATH (or not executable)"])
            case let .cannotStart(program, why): self.init(code: "program", problems: ["\(program): cannot be started: \(why)"])
            case let .output(program, why): self.init(code: "program", problems: ["\(program): \(why)"])
            }
        case let error as VeilSecrets.Failure:
            self.init(code: "secrets", field: error.field, problems: [error.description])
        case is AES256GCM.AuthenticationFailure:
            self.init(code: "decryption", problems: ["decryption failed: the passphrase is wrong or the data was altered"])
        case let error as DatabaseError:
            let what = error.message ?? "\(error.resultCode)"
            let sql = error.sql.map { " (while running \($0.split(separator: " ").prefix(3).joined(separator: " ")))" } ?? ""
            self.init(code: "database", file: database,
                      problems: ["\(database.map { "\($0): " } ?? "")SQLite error \(error.extendedResultCode.rawValue): \(what)\(sql)"])
        default:
            self.init(code: "internal", problems: ["\(error)"])
        }
    }
}
