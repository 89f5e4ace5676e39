import Foundation
import GRDB

/// One row of the CA database's `certificates` table: every certificate the CA ever signed
/// (and the CA's own), with the leaf's key, so bundles can be laid out again at any time.
public struct CertificateRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "certificates"

    public enum Kind: String, Codable, Sendable, CaseIterable {
        case root, intermediate, server, client, admin
        public var isAuthority: Bool { self == .root || self == .intermediate }
    }

    public enum Status: String, Codable, Sendable {
        case valid, revoked, superseded
    }

    public var id: Int64?
    /// Upper-case hex (`SerialNumber.hex`); UNIQUE in the schema.
    public var serial: String
    public var kind: Kind
    public var host: String?
    public var service: String?
    /// What distinguishes certificates of one host and service: the host FQDN, a VIP FQDN, `service@host`, the admin name.
    public var name: String?
    /// RFC 4514 subject.
    public var subject: String
    /// `/C=US/.../CN=x`, as `openssl ca` writes subjects into index.txt.
    public var subjectOneLine: String
    /// The issuance profile (names, usages, key type) the certificate was made from; a change means reissue.
    public var profile: String?
    /// JSON array of `DNS:x` / `IP:y` strings.
    public var sans: String
    public var keyType: String
    public var issuerSerial: String?
    public var notBefore: Date
    public var notAfter: Date
    public var status: Status
    public var revokedAt: Date?
    public var revocationReason: String?
    public var supersededBy: String?
    public var certificatePEM: String
    /// Unencrypted PKCS#8 of a leaf key; nil for CA certificates, whose keys live in encrypted files.
    public var privateKeyPEM: String?
    public var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case id, serial, kind, host, service, name, subject, sans, profile
        case subjectOneLine = "subject_oneline"
        case keyType = "key_type", issuerSerial = "issuer_serial"
        case notBefore = "not_before", notAfter = "not_after", status
        case revokedAt = "revoked_at", revocationReason = "revocation_reason", supersededBy = "superseded_by"
        case certificatePEM = "certificate_pem", privateKeyPEM = "private_key_pem", createdAt = "created_at"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }

    /// (kind, host, service, name): at most one valid certificate per identity.
    public var identity: CertificateIdentity {
        CertificateIdentity(kind: kind, host: host, service: service, name: name ?? "")
    }

    public var sanList: [String] {
        (try? JSONDecoder().decode([String].self, from: Data(sans.utf8))) ?? []
    }

    /// A record for a CA certificate (root or intermediate) as signed just now.
    public init(certificate: Certificate, kind: Kind, issuerSerial: String?, createdAt: Date) throws {
        self.init(pem: String(decoding: try certificate.pemEncoded(), as: UTF8.self), serial: certificate.serial,
                  subject: certificate.subject, subjectOneLine: certificate.subjectOneLine,
                  subjectAlternativeNames: certificate.subjectAlternativeNames, notBefore: certificate.notBefore,
                  notAfter: certificate.notAfter, kind: kind, keyType: certificate.keyType?.rawValue ?? certificate.keyDescription,
                  issuerSerial: issuerSerial, privateKeyPEM: nil, createdAt: createdAt)
    }

    /// A record for a leaf a batch worker signed from `profile`.
    public init(signed: SignedCertificate, profile: CertificateProfile, issuerSerial: String, privateKeyPEM: String, createdAt: Date) {
        self.init(pem: signed.pem, serial: signed.serial, subject: signed.subject, subjectOneLine: signed.subjectOneLine,
                  subjectAlternativeNames: signed.subjectAlternativeNames, notBefore: signed.notBefore, notAfter: signed.notAfter,
                  kind: profile.identity.kind, host: profile.identity.host, service: profile.identity.service,
                  name: profile.identity.name, profile: profile.encodedEssentials(), keyType: profile.keyType.rawValue,
                  issuerSerial: issuerSerial, privateKeyPEM: privateKeyPEM, createdAt: createdAt)
    }

    init(pem: String, serial: SerialNumber, subject: DistinguishedName, subjectOneLine: String, subjectAlternativeNames: [GeneralName],
         notBefore: Date, notAfter: Date, kind: Kind, host: String? = nil, service: String? = nil, name: String? = nil,
         profile: String? = nil, keyType: String, issuerSerial: String?, privateKeyPEM: String?, createdAt: Date) {
        let names = subjectAlternativeNames.map(\.description)
        self.id = nil
        self.serial = serial.hex
        self.kind = kind
        self.host = host
        self.service = service
        self.name = name
        self.profile = profile
        self.subject = subject.rfc4514
        self.subjectOneLine = subjectOneLine
        self.sans = String(decoding: (try? JSONSerialization.data(withJSONObject: names)) ?? Data("[]".utf8), as: UTF8.self)
        self.keyType = keyType
        self.issuerSerial = issuerSerial
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.status = .valid
        self.revokedAt = nil
        self.revocationReason = nil
        self.supersededBy = nil
        self.certificatePEM = pem
        self.privateKeyPEM = privateKeyPEM
        self.createdAt = createdAt
    }
}
