/// An error chpki reports to the operator: one line, naming the file, field and reason.
///
/// `exitCode` follows SPEC §1: 2 for bad input or a refusal, 1 for a failed check, 3 for a change
/// committed whose derived files are stale.
public struct ChpkiError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Bad input or a refused command (exit 2): nothing was changed.
        case refused
        /// A check that ran and failed (exit 1): verify, expiring.
        case checkFailed
        /// The change was committed to ca.db but a file rewritten from it (index.txt, crl.pem, a CA
        /// file) could not be written (exit 3): the next command rewrites it.
        case committedViewsStale
    }

    public var kind: Kind
    /// Each problem found, one report line each (a bundle's checks may find several at once).
    public var problems: [String]
    /// Where the problem is, when an input error says so: for `--json`'s error object.
    public var file: String?
    public var line: Int?
    public var field: String?

    public init(_ kind: Kind = .refused, _ message: String) {
        self.kind = kind
        self.problems = [message]
    }

    /// Several problems found at once: each is its own `chpki: error:` line.
    public init(_ kind: Kind = .refused, problems: [String]) {
        self.kind = kind
        self.problems = problems
    }

    /// `file: field: reason`, the shape every input error takes.
    public static func input(file: String?, line: Int? = nil, field: String?, _ reason: String) -> ChpkiError {
        var location = ""
        if let file {
            location = file
            if let line { location += ":\(line)" }
            location += ": "
        }
        if let field, !field.isEmpty { location += "\(field): " }
        var error = ChpkiError(.refused, location + reason)
        error.file = file
        error.line = file == nil ? nil : line
        error.field = field?.isEmpty == false ? field : nil
        return error
    }

    public var message: String { problems.joined(separator: "\n") }
    public var exitCode: Int32 {
        switch kind {
        case .refused: return 2
        case .checkFailed: return 1
        case .committedViewsStale: return 3
        }
    }
    public var description: String { message }
}
