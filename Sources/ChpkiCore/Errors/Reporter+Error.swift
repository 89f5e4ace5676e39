import Foundation

extension Reporter {
    /// A command's failure: one `chpki: error:` line per problem on stderr (whatever --quiet
    /// says), and with --json the `{"error": {...}}` object on stdout, so a script reading stdout
    /// learns why too. A check that failed (exit 1) has printed its own JSON report instead.
    /// Here, not in ChpkiReporting: ErrorReport words every error type, GRDB's included, and
    /// belongs to the command layer.
    public func error(_ report: ErrorReport) {
        standardError(report.problems.map { "chpki: error: \(ControlCharacters.escaped($0))\n" }.joined())
        guard json, !report.isCheckFailure, let document = try? Self.encodeJSON(["error": report]) else { return }
        standardOutput(document + "\n")
    }
}
