import Foundation
import GRDB

/// Any error a command ends with, worded for the operator: the lines `chpki: error:` prints and,
/// under `--json`, the `{"error": {...}}` object on stdout. Every error type chpki throws is
/// mapped here, in one place, to a `ChpkiError.Code` (docs/errors.md), so none reaches the
/// operator as a Swift type name or without a code.
///
/// `file`, `line` and `field` are absent when unknown.
public struct ErrorReport: Encodable, Sendable, Equatable {
    /// The stable code (`ChpkiError.Code.rawValue`), e.g. `inventory.unknown-field`.
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

    /// A check that ran and failed (exit 1): its own report is the JSON document, not this one.
    public var isCheckFailure: Bool { exitCode == 1 }

    public init(code: ChpkiError.Code, file: String? = nil, line: Int? = nil, field: String? = nil, problems: [String], exitCode: Int32? = nil) {
        self.code = code.rawValue
        self.file = file
        self.line = line
        self.field = field
        self.problems = problems
        self.message = problems.joined(separator: "\n")
        self.exitCode = exitCode ?? ChpkiError(code, problems: problems).exitCode
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
            self.init(code: error.code, file: error.file, line: error.line, field: error.field, problems: error.problems, exitCode: error.exitCode)
        case let error as OpenSSLError:
            self.init(code: .opensslError, problems: [error.description])
        case let error as POSIXFailure:
            self.init(code: .systemError, problems: [error.description])
        case let error as RootedDirectory.Refusal:
            self.init(code: .bundleUnsafePath, file: error.path, problems: [error.description])
        case let error as TrustedDirectory.Refusal:
            self.init(code: error.code, file: error.path, problems: [error.description])
        case let error as RegularFile.Failure:
            let reason: String
            switch error {
            case .missing: reason = "a file chpki needs is missing"
            case let .notRegular(kind): reason = "a file chpki reads is a \(kind), not a regular file"
            case let .unreadable(why): reason = "a file chpki reads cannot be read: \(why)"
            case .tooLarge: reason = "a file chpki reads is \(error.reason)"
            }
            self.init(code: error.code, problems: [reason])
        case let error as Subprocess.Failure:
            switch error {
            case let .notFound(program): self.init(code: .systemProgram, problems: ["\(program): not found on PATH (or not executable)"])
            case let .cannotStart(program, why): self.init(code: .systemProgram, problems: ["\(program): cannot be started: \(why)"])
            case let .output(program, why): self.init(code: .systemProgram, problems: ["\(program): \(why)"])
            }
        case let error as VeilSecrets.Failure:
            self.init(code: .secretsInvalid, field: error.field, problems: [error.description])
        case is AES256GCM.AuthenticationFailure:
            self.init(code: .cryptoAuthenticationFailed, problems: ["decryption failed: the passphrase is wrong or the data was altered"])
        case let error as DatabaseError:
            self.init(database: error, file: database)
        case let error as CocoaError:
            // Foundation file I/O (FileManager): name the file it was about when it says so.
            let path = error.filePath ?? error.url?.path
            self.init(code: .systemError, file: path, problems: ["\(path.map { "\($0): " } ?? "")\(error.localizedDescription)"])
        default:
            self.init(code: .internalBug, problems: ["\(error)"])
        }
    }

    /// SQLite failed on `file`: which file, what SQLite said, and in words what that usually means.
    private init(database error: DatabaseError, file: String?) {
        let what = error.message ?? "\(error.resultCode)"
        let sql = error.sql.map { " (while running \($0.split(separator: " ").prefix(3).joined(separator: " ")))" } ?? ""
        let meaning: String
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED: meaning = "; another process holds the database"
        case .SQLITE_READONLY: meaning = "; the database or its directory is read-only for this user"
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: meaning = "; the database is damaged: restore it from a backup"
        case .SQLITE_FULL: meaning = "; the disk is full"
        case .SQLITE_IOERR: meaning = "; an I/O error: is the disk failing?"
        case .SQLITE_CANTOPEN: meaning = "; the file cannot be opened"
        default: meaning = ""
        }
        self.init(code: .databaseError, file: file,
                  problems: ["\(file.map { "\($0): " } ?? "")SQLite error \(error.extendedResultCode.rawValue): \(what)\(sql)\(meaning)"])
    }
}
