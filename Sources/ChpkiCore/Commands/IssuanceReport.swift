import Foundation

/// The plan lines `issue` and `renew` print: one per certificate, a summary, and the JSON report.
public enum IssuanceReport {
    struct Line: Encodable {
        var action: IssuancePlan.Action
        var reason: String
        var kind: String
        @NullEncoded var service: String?
        @NullEncoded var host: String?
        var name: String
        @NullEncoded var serial: String?
        @NullEncoded var notAfter: Date?

        enum CodingKeys: String, CodingKey {
            case action, reason, kind, service, host, name, serial
            case notAfter = "not_after"
        }

    }

    struct Report: Encodable {
        var dryRun: Bool
        var certificates: [Line]
        var summary: [String: Int]

        enum CodingKeys: String, CodingKey {
            case dryRun = "dry_run", certificates, summary
        }
    }

    static func line(_ item: IssuancePlan.Item, issued: BatchIssuer.Issued?) -> Line {
        let unchanged = item.action == .unchanged ? item.previous : nil
        return Line(action: item.action, reason: item.reason, kind: item.profile.identity.kind.rawValue,
                    service: item.profile.identity.service, host: item.profile.identity.host, name: item.profile.identity.name,
                    serial: issued?.signed.serial.hex ?? unchanged?.serial.hex, notAfter: issued?.signed.notAfter ?? unchanged?.notAfter)
    }

    static func report(_ lines: [Line], dryRun: Bool, reporter: Reporter) throws {
        var summary: [String: Int] = [:]
        for action in [IssuancePlan.Action.issued, .reissued, .renewed, .unchanged] {
            summary[action.rawValue] = lines.filter { $0.action == action }.count
        }
        try reporter.emit(Report(dryRun: dryRun, certificates: lines, summary: summary))
        guard !reporter.json, !reporter.quiet else { return }
        let rows = lines.map { line -> [String] in
            let action = dryRun && line.action != .unchanged ? "would be \(line.action.rawValue)" : line.action.rawValue
            let note = line.action == .reissued || line.action == .renewed ? line.reason : ""
            return [action, line.kind, line.service ?? "-", line.host ?? "-", line.name == line.host ? "" : line.name,
                    line.serial ?? "", note]
        }
        var text = Table.render(header: ["ACTION", "KIND", "SERVICE", "HOST", "NAME", "SERIAL", "NOTE"], rows: rows) + "\n"
        text += "\(summary["issued"]!) issued, \(summary["reissued"]!) reissued, \(summary["renewed"]!) renewed, \(summary["unchanged"]!) unchanged"
        text += dryRun ? " (dry run: nothing was changed)" : ""
        reporter.line(text)
    }
}
