import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// RFC 5280 CRLReason, named as `openssl ca` writes them into index.txt.
public enum RevocationReason: String, CaseIterable, Sendable {
    case unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold

    public var code: Int {
        switch self {
        case .unspecified: return 0
        case .keyCompromise: return 1
        case .cACompromise: return 2
        case .affiliationChanged: return 3
        case .superseded: return 4
        case .cessationOfOperation: return 5
        case .certificateHold: return 6
        }
    }

    /// The spelling of OpenSSL's index.txt (`CACompromise`, not `cACompromise`).
    public var indexName: String { self == .cACompromise ? "CACompromise" : rawValue }

    public init?(indexName: String) {
        self.init(rawValue: indexName == "CACompromise" ? "cACompromise" : indexName)
    }
}
