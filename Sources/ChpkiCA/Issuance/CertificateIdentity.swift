import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// What makes two certificates "the same certificate" across renewals: its kind, host, service and
/// name (host FQDN, VIP FQDN, `service@host` or the admin name).
public struct CertificateIdentity: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var kind: CertificateKind
    public var host: String?
    public var service: String?
    public var name: String

    public init(kind: CertificateKind, host: String?, service: String?, name: String) {
        self.kind = kind
        self.host = host
        self.service = service
        self.name = name
    }

    public var description: String {
        [kind.rawValue, service ?? "-", host ?? "-", name].joined(separator: " ")
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.host ?? "", lhs.service ?? "", lhs.kind.rawValue, lhs.name) < (rhs.host ?? "", rhs.service ?? "", rhs.kind.rawValue, rhs.name)
    }
}
