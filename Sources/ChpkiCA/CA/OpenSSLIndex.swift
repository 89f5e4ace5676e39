import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// `index.txt` in the format of `openssl ca`, so `openssl ocsp -index` and other OpenSSL tooling
/// work on chpki's CA: `STATUS\tEXPIRY\tREVOCATION\tSERIAL\tunknown\tSUBJECT`.
public enum OpenSSLIndex {
    public static let fileName = "index.txt"
    public static let attributesFileName = "index.txt.attr"
    /// chpki re-issues the same subject on renewal, as `openssl ca` does with this setting.
    public static let attributes = "unique_subject = no\n"

    /// What one line of index.txt says about a certificate.
    public struct Entry: Sendable {
        public var serial: String
        public var status: CertificateStatus
        public var notAfter: Date
        public var revokedAt: Date?
        public var revocationReason: String?
        public var subjectOneLine: String
    }

    /// Every certificate the CA signed (not the self-signed root), in serial order as `openssl ca` keeps it.
    public static func render(_ records: [Entry], now: Date) -> String {
        // Hex serials: their UTF-8 length is their length, without String.count's walk over characters.
        records.sorted { ($0.serial.utf8.count, $0.serial) < ($1.serial.utf8.count, $1.serial) }
            .map { line(for: $0, now: now) }
            .joined()
    }

    package static func line(for record: Entry, now: Date) -> String {
        var status = "V"
        var revocation = ""
        if record.status == .revoked, let revokedAt = record.revokedAt {
            status = "R"
            revocation = asn1Time(revokedAt) + (record.revocationReason.map { ",\($0)" } ?? "")
        } else if record.notAfter <= now {
            status = "E"
        }
        return "\(status)\t\(asn1Time(record.notAfter))\t\(revocation)\t\(record.serial)\tunknown\t\(record.subjectOneLine)\n"
    }

    /// `YYMMDDHHMMSSZ` (UTCTime) before 2050, `YYYYMMDDHHMMSSZ` after, as OpenSSL writes them.
    /// From the C library's UTC calendar: Foundation's cost a tenth of a second for 10,000 lines.
    static func asn1Time(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let year = parts.tm_year + 1900
        let yearText = year < 2050 ? two(year % 100) : String(year)
        return yearText + two(parts.tm_mon + 1) + two(parts.tm_mday) + two(parts.tm_hour) + two(parts.tm_min) + two(parts.tm_sec) + "Z"
    }
}
