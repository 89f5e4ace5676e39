import Foundation

/// `chpki expiring`: what expires within the window; exit 1 if anything does.
public enum ExpiringCommand {
    struct Report: Encodable {
        /// null when each certificate's own window applied.
        @NullEncoded var within: String?
        var certificates: [Expiry.Item]
        /// CRLs of crl.pem past or near their nextUpdate.
        var crls: [CRLFreshness.Item]
    }

    public static func run(within: String?, settings: Settings, reporter: Reporter) throws {
        let window = try within.map { text -> Period in
            guard let period = Period(text) else { throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--within", "'\(text)' is not \(Period.help)") }
            return period
        }
        let inventory = try settings.inventoryIfPresent()
        let session = try settings.openCA(.read, reporter: reporter)
        let now = session.now
        let records = try session.validLeaves() + session.authorities.filter { $0.status == .valid && $0.authorityRole != .retired }
        let due = Expiry.due(records, now: now, window: window, renewBefore: inventory?.defaults.renewBefore ?? Defaults.renewBefore)
            .sorted { $0.notAfter < $1.notAfter }
        let crls = try CRLFreshness.due(try session.publishedCRL(), now: now, window: window)
        try reporter.emit(Report(within: window?.description, certificates: due, crls: crls))
        if !due.isEmpty {
            reporter.table(header: ["KIND", "SERVICE", "HOST", "NAME", "SERIAL", "NOT AFTER", TimeLeft.header],
                           rows: due.map { [$0.kind, $0.service ?? "-", $0.host ?? "-", $0.name ?? "", $0.serial,
                                            RFC3339.format($0.notAfter), "\($0.daysLeft)"] })
        }
        for crl in crls { reporter.line(crl.line) }
        guard due.isEmpty else {
            throw ChpkiError(.checkExpiring, "\(due.count) certificate(s) expire within \(window?.description ?? "their renewal window"): run 'chpki renew'")
        }
        if let first = crls.first {
            throw ChpkiError(.checkCRLStale, first.line + (crls.count > 1 ? " (and \(crls.count - 1) more CRL(s))" : ""))
        }
        reporter.line("nothing expires within \(window?.description ?? "the renewal windows") (\(records.count) valid certificates)")
    }
}
