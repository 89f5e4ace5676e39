import Foundation

/// `index.txt` in the format of `openssl ca`, so `openssl ocsp -index` and other OpenSSL tooling
/// work on chpki's CA: `STATUS\tEXPIRY\tREVOCATION\tSERIAL\tunknown\tSUBJECT`.
public enum OpenSSLIndex {
    public static let fileName = "index.txt"
    public static let attributesFileName = "index.txt.attr"
    /// chpki re-issues the same subject on renewal, as `openssl ca` does with this setting.
    public static let attributes = "unique_subject = no\n"

    /// Every certificate the CA signed (not the self-signed root), in serial order as `openssl ca` keeps it.
    public static func render(_ records: [CertificateRecord], now: Date) -> String {
        records.filter { $0.kind != .root }
            .sorted { ($0.serial.count, $0.serial) < ($1.serial.count, $1.serial) }
            .map { line(for: $0, now: now) }
            .joined()
    }

    static func line(for record: CertificateRecord, now: Date) -> String {
        var status = "V"
        var revocation = ""
        if record.status == .revoked, let revokedAt = record.revokedAt {
            status = "R"
            revocation = asn1Time(revokedAt) + (record.revocationReason.map { ",\($0)" } ?? "")
        } else if record.notAfter <= now {
            status = "E"
        }
        let subject = (try? Certificate(pem: Data(record.certificatePEM.utf8)).subjectOneLine) ?? record.subject
        return "\(status)\t\(asn1Time(record.notAfter))\t\(revocation)\t\(record.serial)\tunknown\t\(subject)\n"
    }

    /// `YYMMDDHHMMSSZ` (UTCTime) before 2050, `YYYYMMDDHHMMSSZ` after, as OpenSSL writes them.
    static func asn1Time(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let year = parts.year!
        let yearText = year < 2050 ? String(format: "%02d", year % 100) : String(format: "%04d", year)
        return yearText + String(format: "%02d%02d%02d%02d%02dZ", parts.month!, parts.day!, parts.hour!, parts.minute!, parts.second!)
    }
}
