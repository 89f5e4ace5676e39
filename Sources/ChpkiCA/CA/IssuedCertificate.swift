import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// What a certificate of this CA is for.
public enum CertificateKind: String, Codable, Sendable, CaseIterable {
    case root, intermediate, server, client, admin
    public var isAuthority: Bool { self == .root || self == .intermediate }
}

/// Where a certificate stands in the CA's life.
public enum CertificateStatus: String, Codable, Sendable {
    case valid, revoked, superseded
}

/// The part a CA certificate (root or intermediate) plays now: `current` signs (several intermediates
/// may be current at once, each with its own name constraints), `previous` is the one a rotation is
/// replacing, `retired` is kept for the record only.
public enum AuthorityRole: String, Codable, Sendable {
    case current, previous, retired
}

/// A revocation: when, and the RFC 5280 reason.
public struct Revocation: Sendable, Equatable {
    public var date: Date
    public var reason: RevocationReason?
}

/// One certificate the CA signed (or its own), as the rest of chpki sees it: typed, and without any
/// key. Keys are handed out separately and only on request (`CASession.validLeaves(withKeys:)`).
public struct IssuedCertificate: Sendable, Equatable {
    public var serial: SerialNumber
    public var kind: CertificateKind
    public var host: String?
    public var service: String?
    /// What distinguishes certificates of one host and service: the host FQDN, a VIP FQDN, `service@host`, the admin name.
    public var name: String?
    /// RFC 4514 subject.
    public var subject: String
    /// `/C=US/.../CN=x`, as `openssl ca` writes subjects into index.txt.
    public var subjectOneLine: String
    public var subjectAlternativeNames: [GeneralName]
    /// The issuance profile (names, usages, key type) a leaf was made from; a change means reissue.
    public var profile: CertificateProfile.Essentials?
    /// nil for a key chpki cannot generate (a CA imported from elsewhere).
    public var keyType: KeyType?
    /// The serial of the CA certificate that signed this one; nil for a self-signed root.
    public var issuerSerial: SerialNumber?
    public var notBefore: Date
    public var notAfter: Date
    public var status: CertificateStatus
    public var revocation: Revocation?
    public var supersededBy: SerialNumber?
    /// For CA certificates only.
    public var authorityRole: AuthorityRole?
    public var certificatePEM: String

    /// (kind, host, service, name): at most one valid certificate per identity.
    public var identity: CertificateIdentity {
        CertificateIdentity(kind: kind, host: host, service: service, name: name ?? "")
    }

    /// The certificate itself, parsed.
    public func certificate() throws -> Certificate { try Certificate(pem: Data(certificatePEM.utf8)) }
}

/// A valid leaf with its private key (unencrypted PKCS#8 PEM), for what must ship the key: bundles,
/// verify, one-off `--out`. The key bytes are wiped when the last copy goes away.
public struct LeafWithKey: Sendable {
    public var certificate: IssuedCertificate
    public var key: SecretBytes

    /// The key as PEM text (a copy that is not wiped: prefer `key` where a String is not needed).
    public var privateKeyPEM: String { key.withBytes { String(decoding: $0, as: UTF8.self) } }
}
