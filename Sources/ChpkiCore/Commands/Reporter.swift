import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a command's output goes: human text or one JSON document on stdout, notes on stderr.
/// `--quiet` drops the human text (JSON and errors still print); `--verbose` adds detail.
public final class Reporter: @unchecked Sendable {
    public let json: Bool
    public let quiet: Bool
    public let verbose: Bool
    private let standardOutput: (String) -> Void
    private let standardError: (String) -> Void

    public init(json: Bool, quiet: Bool, verbose: Bool,
                standardOutput: @escaping (String) -> Void = { FileHandle.standardOutput.write(Data($0.utf8)) },
                standardError: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.json = json
        self.quiet = quiet
        self.verbose = verbose
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    /// A line of the human report (suppressed by --json and --quiet).
    public func line(_ text: String = "", terminator: String = "\n") {
        guard !json, !quiet else { return }
        standardOutput(text + terminator)
    }

    /// Detail shown with --verbose, on stderr so it never mixes with JSON.
    public func detail(_ text: String) {
        guard verbose else { return }
        standardError(text + "\n")
    }

    /// A note the operator should see unless --quiet (a weak setting they chose).
    public func note(_ text: String) {
        guard !quiet else { return }
        standardError("chpki: \(text)\n")
    }

    /// Progress for a person watching: only on a terminal, so scripts and logs see one line per error.
    public func progress(_ text: String) {
        guard !quiet, isatty(STDERR_FILENO) == 1 else { return }
        standardError("chpki: \(text)\n")
    }

    /// The one JSON document of `--json`, keys sorted so output is stable.
    public func emit<T: Encodable>(_ value: T) throws {
        guard json else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.format(date))
        }
        standardOutput(String(decoding: try encoder.encode(value), as: UTF8.self) + "\n")
    }
}
