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
    /// From `UTCFields`: Foundation's calendar cost a tenth of a second for 10,000 lines.
    static func asn1Time(_ date: Date) -> String {
        let time = UTCFields(wholeSeconds: Int(date.timeIntervalSince1970.rounded(.down)))
        let two = UTCFields.twoDigits
        let yearText = time.year < 2050 ? two(time.year % 100) : String(time.year)
        return yearText + two(time.month) + two(time.day) + two(time.hour) + two(time.minute) + two(time.second) + "Z"
    }
}
