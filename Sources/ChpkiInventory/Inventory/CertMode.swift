import ChpkiBase
import ChpkiModel
import ChpkiPlatform

/// Which extended key usages a certificate carries: minicluster's `server_cert_mode` and
/// `client_cert_mode` values (`client` -> clientAuth, `server` -> serverAuth, `both` -> both).
public enum CertMode: String, CaseIterable, Sendable, Equatable {
    case client, server, both

    public var serverAuth: Bool { self != .client }
    public var clientAuth: Bool { self != .server }

    /// "client, server, both" for error messages.
    public static var allNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// How the host part of a client certificate's CN `service@host` is written (`client_cn`).
public enum ClientCN: String, CaseIterable, Sendable, Equatable {
    /// The host's short name (its first label): minicluster's rule, the default.
    case short
    /// The host's FQDN.
    case fqdn

    public static var allNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
