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
    /// RFC 4514 subject.
    public var subject: String
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
        case id, serial, kind, host, service, subject, sans
        case keyType = "key_type", issuerSerial = "issuer_serial"
        case notBefore = "not_before", notAfter = "not_after", status
        case revokedAt = "revoked_at", revocationReason = "revocation_reason", supersededBy = "superseded_by"
        case certificatePEM = "certificate_pem", privateKeyPEM = "private_key_pem", createdAt = "created_at"
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) {
        id = inserted.rowID
    }

    public var sanList: [String] {
        (try? JSONDecoder().decode([String].self, from: Data(sans.utf8))) ?? []
    }

    /// A record for `certificate` as signed just now.
    public init(certificate: Certificate, kind: Kind, host: String? = nil, service: String? = nil,
                issuerSerial: String?, privateKeyPEM: String?, createdAt: Date) throws {
        let names = certificate.subjectAlternativeNames.map(\.description)
        self.id = nil
        self.serial = certificate.serial.hex
        self.kind = kind
        self.host = host
        self.service = service
        self.subject = certificate.subject.rfc4514
        self.sans = String(decoding: try JSONEncoder().encode(names), as: UTF8.self)
        self.keyType = certificate.keyType?.rawValue ?? certificate.keyDescription
        self.issuerSerial = issuerSerial
        self.notBefore = certificate.notBefore
        self.notAfter = certificate.notAfter
        self.status = .valid
        self.revokedAt = nil
        self.revocationReason = nil
        self.supersededBy = nil
        self.certificatePEM = String(decoding: try certificate.pemEncoded(), as: UTF8.self)
        self.privateKeyPEM = privateKeyPEM
        self.createdAt = createdAt
    }
}
