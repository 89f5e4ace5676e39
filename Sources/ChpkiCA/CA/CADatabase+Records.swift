import Foundation
import GRDB
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// How `ca.db`'s rows are read: through records whose columns are named once (`Columns`) and whose
/// enums are column values, never through SQL fragments. A row that does not decode is an error
/// naming it: read as "valid" or skipped, a damaged row would be planned, bundled or listed as if it
/// were sound.
extension CertificateKind: DatabaseValueConvertible {
    /// The kinds of leaf certificates (signed for hosts and clients, never CAs).
    package static let leaves: [CertificateKind] = [.server, .client, .admin]
    package static let authorities: [CertificateKind] = [.root, .intermediate]
}

extension CertificateStatus: DatabaseValueConvertible {}
extension AuthorityRole: DatabaseValueConvertible {}

extension CADatabase {
    /// One row of `certificates` as chpki reads it (no key columns: keys are read on request only).
    struct CertificateRecord: FetchableRecord, TableRecord {
        static let databaseTableName = "certificates"

        enum Columns {
            static let id = Column("id")
            static let serial = Column("serial")
            static let kind = Column("kind")
            static let host = Column("host")
            static let service = Column("service")
            static let name = Column("name")
            static let subject = Column("subject")
            static let subjectOneLine = Column("subject_oneline")
            static let profile = Column("profile")
            static let sans = Column("sans")
            static let keyType = Column("key_type")
            static let issuerSerial = Column("issuer_serial")
            static let notBefore = Column("not_before")
            static let notAfter = Column("not_after")
            static let status = Column("status")
            static let revokedAt = Column("revoked_at")
            static let revocationReason = Column("revocation_reason")
            static let supersededBy = Column("superseded_by")
            static let authorityRole = Column("authority_role")
            static let certificatePEM = Column("certificate_pem")
            static let authorityKeyPEM = Column("authority_key_pem")
            static let privateKeyPEM = Column("private_key_pem")
            static let keySealed = Column("key_sealed")
            static let origin = Column("origin")
        }

        static var databaseSelection: [any SQLSelectable] { [
            Columns.serial, Columns.kind, Columns.host, Columns.service, Columns.name, Columns.subject, Columns.subjectOneLine,
            Columns.profile, Columns.sans, Columns.keyType, Columns.issuerSerial, Columns.notBefore, Columns.notAfter, Columns.status,
            Columns.revokedAt, Columns.revocationReason, Columns.supersededBy, Columns.authorityRole, Columns.certificatePEM,
        ] }

        var certificate: IssuedCertificate

        init(row: Row) throws {
            let serial = try CADatabase.serial(row, Columns.serial)
            let field = "certificates.serial=\(serial.hex)"
            func decode<T: DatabaseValueConvertible>(_ column: Column) throws -> T {
                do { return try row.decode(forColumn: column.name) } catch {
                    throw ChpkiError.input(.caCorrupt, file: CADatabase.fileName, field: field, "the \(column.name) column does not decode: restore ca.db from a backup")
                }
            }
            // A JSON column that does not decode is refused naming the row: read as "no SANs" or "no
            // profile", the leaf would be planned as unchanged forever.
            func json<T: Decodable>(_ type: T.Type, _ column: Column, _ text: String) throws -> T {
                do { return try JSONDecoder().decode(type, from: Data(text.utf8)) } catch {
                    throw ChpkiError.input(.caCorrupt, file: CADatabase.fileName, field: field,
                                           "the \(column.name) column does not decode (\(String(text.prefix(40)).debugDescription)): restore ca.db from a backup")
                }
            }
            let sans = try json([String].self, Columns.sans, try decode(Columns.sans)).compactMap(GeneralNameText.parse)
            let profileText: String? = try decode(Columns.profile)
            let profile = try profileText.map { try json(CertificateProfile.Essentials.self, Columns.profile, $0) }
            let revokedAt: Date? = try decode(Columns.revokedAt)
            let reasonText: String? = try decode(Columns.revocationReason)
            let keyTypeText: String = try decode(Columns.keyType)
            certificate = IssuedCertificate(
                serial: serial, kind: try decode(Columns.kind), host: try decode(Columns.host), service: try decode(Columns.service),
                name: try decode(Columns.name), subject: try decode(Columns.subject), subjectOneLine: try decode(Columns.subjectOneLine),
                subjectAlternativeNames: sans, profile: profile,
                // A CA imported from elsewhere may have a key chpki cannot generate: its description is kept, typed as nil.
                keyType: KeyType(rawValue: keyTypeText),
                issuerSerial: try CADatabase.optionalSerial(row, Columns.issuerSerial, field: field),
                notBefore: try decode(Columns.notBefore), notAfter: try decode(Columns.notAfter), status: try decode(Columns.status),
                revocation: revokedAt.map { Revocation(date: $0, reason: reasonText.flatMap(RevocationReason.init(indexName:))) },
                supersededBy: try CADatabase.optionalSerial(row, Columns.supersededBy, field: field),
                authorityRole: try decode(Columns.authorityRole), certificatePEM: try decode(Columns.certificatePEM))
        }

        /// Leaves (server, client, admin).
        static var leaves: QueryInterfaceRequest<CertificateRecord> {
            filter(CertificateKind.leaves.contains(Columns.kind))
        }

        /// Roots and intermediates.
        static var authorities: QueryInterfaceRequest<CertificateRecord> {
            filter(CertificateKind.authorities.contains(Columns.kind))
        }
    }

    /// The columns index.txt needs.
    struct IndexRecord: FetchableRecord, TableRecord {
        typealias Columns = CertificateRecord.Columns
        static let databaseTableName = CertificateRecord.databaseTableName
        static var databaseSelection: [any SQLSelectable] { [
            Columns.serial, Columns.status, Columns.notAfter, Columns.revokedAt, Columns.revocationReason, Columns.subjectOneLine,
        ] }

        var entry: OpenSSLIndex.Entry

        init(row: Row) throws {
            let serial = try CADatabase.serial(row, Columns.serial)
            do {
                // The serial as ca.db spells it, as index.txt always had it.
                entry = OpenSSLIndex.Entry(serial: try row.decode(forColumn: Columns.serial.name), status: try row.decode(forColumn: Columns.status.name),
                                           notAfter: try row.decode(forColumn: Columns.notAfter.name),
                                           revokedAt: try row.decode(forColumn: Columns.revokedAt.name),
                                           revocationReason: try row.decode(forColumn: Columns.revocationReason.name),
                                           subjectOneLine: try row.decode(forColumn: Columns.subjectOneLine.name))
            } catch {
                throw ChpkiError.input(.caCorrupt, file: CADatabase.fileName, field: "certificates.serial=\(serial.hex)",
                                       "a column index.txt needs does not decode: restore ca.db from a backup")
            }
        }
    }

    /// The serial of a row; a row without a readable one is refused (it cannot even be named).
    package static func serial(_ row: Row, _ column: Column) throws -> SerialNumber {
        let text: String? = try? row.decode(forColumn: column.name)
        guard let text, let serial = SerialNumber(hex: text) else {
            throw ChpkiError.input(.caCorrupt, file: fileName, field: "certificates.\(column.name)",
                                   "unreadable serial \(String((text ?? "NULL").prefix(40)).debugDescription): restore ca.db from a backup")
        }
        return serial
    }

    /// An optional serial column (issuer, superseded_by): NULL is nil, anything else must be a serial.
    static func optionalSerial(_ row: Row, _ column: Column, field: String) throws -> SerialNumber? {
        let text: String?
        do { text = try row.decode(forColumn: column.name) } catch { text = "" }
        guard let text else { return nil }
        guard let serial = SerialNumber(hex: text) else {
            throw ChpkiError.input(.caCorrupt, file: fileName, field: field, "the \(column.name) column is not a serial: restore ca.db from a backup")
        }
        return serial
    }
}
