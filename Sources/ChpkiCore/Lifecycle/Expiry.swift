import Foundation

/// Which valid certificates expire within a window (`chpki expiring`).
public enum Expiry {
    /// CA certificates are flagged a year ahead: a rotation takes longer than a renewal.
    public static let authorityWindow = Period(amount: 365, unit: .days)

    public struct Item: Sendable, Encodable {
        public var kind: String
        public var service: String?
        public var host: String?
        public var name: String?
        public var serial: String
        public var notAfter: Date
        public var daysLeft: Int

        enum CodingKeys: String, CodingKey {
            case kind, service, host, name, serial
            case notAfter = "not_after", daysLeft = "days_left"
        }

        public func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(kind, forKey: .kind)
            try container.encode(service, forKey: .service)
            try container.encode(host, forKey: .host)
            try container.encode(name, forKey: .name)
            try container.encode(serial, forKey: .serial)
            try container.encode(notAfter, forKey: .notAfter)
            try container.encode(daysLeft, forKey: .daysLeft)
        }
    }

    /// Valid certificates whose notAfter is within `window` of `now` (default: `renewBefore` for
    /// leaves, `authorityWindow` for CAs).
    public static func due(_ records: [CertificateRecord], now: Date, window: Period?, renewBefore: Period) -> [Item] {
        records.filter { record in
            guard record.status == .valid else { return false }
            let period = window ?? (record.kind.isAuthority ? authorityWindow : renewBefore)
            return period.before(record.notAfter) <= now
        }.map { record in
            Item(kind: record.kind.isAuthority ? "ca" : record.kind.rawValue, service: record.service, host: record.host,
                 name: record.name ?? record.subject, serial: record.serial, notAfter: record.notAfter,
                 daysLeft: Int((record.notAfter.timeIntervalSince(now) / 86400).rounded(.down)))
        }
    }
}
