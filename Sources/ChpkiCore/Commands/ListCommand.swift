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
        var status: String
        var certificate: String

        enum CodingKeys: String, CodingKey {
            case host, service, kind, name, serial, subject, sans, status, certificate
            case notAfter = "not_after"
        }

    }

    public static func run(settings: Settings, reporter: Reporter) throws {
        let session = try settings.openCA(.read, reporter: reporter)
        let now = session.now
        let entries = try session.certificates().map { record in
            Entry(host: record.host, service: record.service, kind: record.kind.isAuthority ? "ca" : record.kind.rawValue,
                  name: record.name, serial: record.serial.hex, subject: record.subject, sans: record.subjectAlternativeNames.map(\.description),
                  notAfter: record.notAfter,
                  status: record.status == .valid && record.notAfter <= now ? "expired" : record.status.rawValue,
                  certificate: record.certificatePEM)
        }
        try reporter.emit(entries)
        guard !reporter.json, !reporter.quiet else { return }
        let header = ["HOST", "SERVICE", "KIND", "NAME", "SERIAL", "NOT AFTER", "STATUS"]
        let rows = entries.map { [$0.host ?? "-", $0.service ?? "-", $0.kind, $0.name ?? $0.subject, $0.serial,
                                  RFC3339.format($0.notAfter), $0.status] }
        reporter.line(Table.render(header: header, rows: rows))
    }
}

/// Left-aligned columns separated by two spaces.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }.joined(separator: "\n")
    }
}
