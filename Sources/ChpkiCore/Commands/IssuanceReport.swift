import Foundation

/// The plan lines `issue` and `renew` print: a line for a new issuing intermediate, one per
/// certificate, one per certificate to retire, a summary, and the JSON report.
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
        /// For retire lines: the RFC 5280 reason `--prune` revokes with.
        @NullEncoded var revocationReason: String?

        enum CodingKeys: String, CodingKey {
            case action, reason, kind, service, host, name, serial
            case notAfter = "not_after"
            case revocationReason = "revocation_reason"
        }
    }

    /// The `intermediate new covers ...` plan line.
    public struct Growth: Encodable, Sendable {
        var action: String
        var covers: [String]
        @NullEncoded var serial: String?
        @NullEncoded var subject: String?
        @NullEncoded var notAfter: Date?

        enum CodingKeys: String, CodingKey {
            case action, covers, serial, subject
            case notAfter = "not_after"
        }

        init?(_ decision: IssuingAuthorities.Decision, certificate: Certificate?) {
            guard case let .newIntermediate(_, uncovered) = decision else { return nil }
            action = "new"
            covers = uncovered.map(\.description)
            summary = IssuingAuthorities.summary(uncovered)
            serial = certificate?.serial.hex
            subject = certificate?.subject.rfc4514
            notAfter = certificate?.notAfter
        }

        var summary = ""
    }

    struct Report: Encodable {
        var dryRun: Bool
        @NullEncoded var intermediate: Growth?
        /// One line per certificate the inventory implies (or the one-off / renewals).
        var certificates: [Line]
        /// Live certificates to retire (or retired by --prune): several may share an identity with a plan line.
        var retire: [Line]
        var summary: [String: Int]

        enum CodingKeys: String, CodingKey {
            case dryRun = "dry_run", intermediate, certificates, retire, summary
        }
    }

    static func line(_ item: IssuancePlan.Item, issued: BatchIssuer.Issued?) -> Line {
        let unchanged = item.action == .unchanged ? item.previous : nil
        return Line(action: item.action, reason: item.reason, kind: item.profile.identity.kind.rawValue,
                    service: item.profile.identity.service, host: item.profile.identity.host, name: item.profile.identity.name,
                    serial: issued?.signed.serial.hex ?? unchanged?.serial.hex, notAfter: issued?.signed.notAfter ?? unchanged?.notAfter,
                    revocationReason: nil)
    }

    static func line(_ item: RetirementPlan.Item, pruned: Bool) -> Line {
        let leaf = item.certificate
        return Line(action: pruned ? .retired : .retire, reason: item.why, kind: leaf.kind.rawValue, service: leaf.service,
                    host: leaf.host, name: leaf.name ?? leaf.subject, serial: leaf.serial.hex, notAfter: leaf.notAfter,
                    revocationReason: item.reason.rawValue)
    }

    /// `renew`'s report: certificates only.
    static func report(_ lines: [Line], dryRun: Bool, reporter: Reporter) throws {
        try report(lines, growth: nil, retirement: nil, pruned: false, prune: false, dryRun: dryRun, reporter: reporter)
    }

    /// Prints the report; returns how many certificates wait for `--prune`.
    @discardableResult
    static func report(_ certificateLines: [Line], growth: Growth?, retirement: RetirementPlan?, pruned: Bool, prune: Bool,
                       dryRun: Bool, reporter: Reporter) throws -> Int {
        let lines = certificateLines + (retirement?.items.map { line($0, pruned: pruned) } ?? [])
        var summary: [String: Int] = [:]
        for action in [IssuancePlan.Action.issued, .reissued, .renewed, .unchanged, .retire, .retired] {
            summary[action.rawValue] = lines.filter { $0.action == action }.count
        }
        try reporter.emit(Report(dryRun: dryRun, intermediate: growth, certificates: certificateLines,
                                 retire: Array(lines.dropFirst(certificateLines.count)), summary: summary))
        guard !reporter.json, !reporter.quiet else { return summary["retire"] ?? 0 }
        if let growth {
            let done = growth.serial.map { " (signed by the root: \($0))" } ?? (dryRun ? " (would be signed by the root)" : "")
            reporter.line("intermediate  \(growth.action)  covers \(growth.summary)\(done)")
        }
        let rows = lines.map { line -> [String] in
            var action = line.action.rawValue
            if dryRun && line.action != .unchanged && line.action != .retire { action = "would be \(action)" }
            var note = line.action == .reissued || line.action == .renewed ? line.reason : ""
            // A certificate signed by this run: its own expiry (the reason of a renewal names the old one's).
            if !dryRun, line.action != .unchanged, line.revocationReason == nil, let notAfter = line.notAfter {
                note = "expires \(RFC3339.format(notAfter))" + (line.action == .reissued ? "; \(line.reason)" : "")
            }
            if let reason = line.revocationReason { note = "\(line.reason) (\(reason))" }
            return [action, line.kind, line.service ?? "-", line.host ?? "-", line.name == line.host ? "" : line.name,
                    line.serial ?? "", note]
        }
        reporter.table(header: ["ACTION", "KIND", "SERVICE", "HOST", "NAME", "SERIAL", "NOTE"], rows: rows)
        var text = "\(summary["issued"]!) issued, \(summary["reissued"]!) reissued, \(summary["renewed"]!) renewed, \(summary["unchanged"]!) unchanged"
        if let retire = summary["retire"], retire > 0 {
            text += ", \(retire) to retire" + (prune && dryRun ? " (--prune would revoke them)" : " (waiting for --prune)")
        }
        if let retired = summary["retired"], retired > 0 { text += ", \(retired) retired (revoked, CRL published)" }
        text += dryRun ? " (dry run: nothing was changed)" : ""
        reporter.line(text)
        return summary["retire"] ?? 0
    }
}
