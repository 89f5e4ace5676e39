import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
        records.sorted { ($0.serial.count, $0.serial) < ($1.serial.count, $1.serial) }
            .map { line(for: $0, now: now) }
            .joined()
    }

    static func line(for record: Entry, now: Date) -> String {
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
    static func asn1Time(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let year = Int(parts.tm_year) + 1900
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let yearText = year < 2050 ? two(Int32(year % 100)) : String(year)
        return yearText + two(parts.tm_mon + 1) + two(parts.tm_mday) + two(parts.tm_hour) + two(parts.tm_min) + two(parts.tm_sec) + "Z"
    }
}
