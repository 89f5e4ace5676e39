import Foundation

/// `chpki list`: every certificate the CA has signed, and its own.
public enum ListCommand {
    struct Entry: Encodable {
        @NullEncoded var host: String?
        @NullEncoded var service: String?
        var kind: String
        @NullEncoded var name: String?
        var serial: String
        var subject: String
        var sans: [String]
        var notAfter: Date
        /// Until notAfter from the CA's now (negative once expired), for scripts that sort or alert.
        var secondsLeft: Int
        var status: String
        var certificate: String

        enum CodingKeys: String, CodingKey {
            case host, service, kind, name, serial, subject, sans, status, certificate
            case notAfter = "not_after", secondsLeft = "seconds_left"
        }

    }

    public static func run(settings: Settings, reporter: Reporter) throws {
        let session = try settings.openCA(.read, reporter: reporter)
        let now = session.now
        let entries = try session.certificates().map { record in
            Entry(host: record.host, service: record.service, kind: record.kind.isAuthority ? "ca" : record.kind.rawValue,
                  name: record.name, serial: record.serial.hex, subject: record.subject, sans: record.subjectAlternativeNames.map(\.description),
                  notAfter: record.notAfter, secondsLeft: TimeLeft.seconds(until: record.notAfter, from: now),
                  status: record.status == .valid && record.notAfter <= now ? "expired" : record.status.rawValue,
                  certificate: record.certificatePEM)
        }
        try reporter.emit(entries)
        guard !reporter.json, !reporter.quiet else { return }
        let header = ["HOST", "SERVICE", "KIND", "NAME", "SERIAL", "NOT AFTER", TimeLeft.header, "STATUS"]
        // Time left matters for what is still in use: a revoked or superseded certificate shows "-".
        let rows = entries.map { [$0.host ?? "-", $0.service ?? "-", $0.kind, $0.name ?? $0.subject, $0.serial, RFC3339.format($0.notAfter),
                                  $0.status == "valid" || $0.status == "expired" ? "\(TimeLeft.days(until: $0.notAfter, from: now))" : "-",
                                  $0.status] }
        reporter.table(header: header, rows: rows)
    }
}
