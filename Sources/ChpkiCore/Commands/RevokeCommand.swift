import Foundation
import GRDB

/// `chpki revoke` and `chpki crl`: revocation and a freshly signed CRL.
public enum RevokeCommand {
    struct Report: Encodable {
        var revoked: [String]
        var crlNumber: Int
        var crl: String

        enum CodingKeys: String, CodingKey {
            case revoked, crl
            case crlNumber = "crl_number"
        }
    }

    public static func revoke(_ target: String, reason: RevocationReason, passphraseFile: String?, settings: Settings, reporter: Reporter) throws {
        let authority = try CertificateAuthority(directory: settings.caDirectory)
        let now = try settings.now()
        let (number, serials) = try IssueCommand.withLockedCA(authority, reporter: reporter) { () -> (Int, [String]) in
            let serials = try select(target, in: authority, inventory: try settings.inventoryIfPresent())
            let signer = try authority.signer {
                try PassphraseSource(file: passphraseFile, environment: settings.environment).existingPassphrase(purpose: "the CA key")
            }
            let number = try CRLPublisher.publish(authority, signer: signer, now: now) { db in
                for serial in serials {
                    try db.execute(sql: """
                        UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?
                        WHERE serial = ? AND status != 'revoked'
                        """, arguments: [now, reason.indexName, serial])
                }
            }
            return (number, serials)
        }
        try reporter.emit(Report(revoked: serials, crlNumber: number, crl: authority.directory.file(CADirectory.crl)))
        for serial in serials { reporter.line("revoked \(serial) (\(reason.rawValue))") }
        reporter.line("signed CRL number \(number): \(authority.directory.file(CADirectory.crl))")
    }

    public static func crl(days: Int, passphraseFile: String?, settings: Settings, reporter: Reporter) throws {
        guard (1...3650).contains(days) else { throw ChpkiError.input(file: nil, field: "--days", "must be between 1 and 3650") }
        let authority = try CertificateAuthority(directory: settings.caDirectory)
        let now = try settings.now()
        let number = try IssueCommand.withLockedCA(authority, reporter: reporter) { () -> Int in
            let signer = try authority.signer {
                try PassphraseSource(file: passphraseFile, environment: settings.environment).existingPassphrase(purpose: "the CA key")
            }
            return try CRLPublisher.publish(authority, signer: signer, now: now, days: days)
        }
        try reporter.emit(Report(revoked: [], crlNumber: number, crl: authority.directory.file(CADirectory.crl)))
        reporter.line("signed CRL number \(number), valid \(days) days: \(authority.directory.file(CADirectory.crl))")
    }

    /// Serials for `SERIAL`, `HOST` or `HOST/SERVICE`; refuses a target that matches nothing.
    static func select(_ target: String, in authority: CertificateAuthority, inventory: Inventory?) throws -> [String] {
        let records = try authority.database.allCertificates().filter { !$0.kind.isAuthority }
        if let serial = SerialNumber(hex: target), let record = records.first(where: { $0.serial == serial.hex }) {
            guard record.status != .revoked else { throw ChpkiError.input(file: nil, field: "SERIAL", "\(record.serial) is already revoked") }
            return [record.serial]
        }
        let parts = target.split(separator: "/", maxSplits: 1).map(String.init)
        let hostName = parts.first.map { name in inventory?.host(named: name)?.name ?? name.lowercased() } ?? ""
        let service = parts.count == 2 ? parts[1] : nil
        let matches = records.filter { record in
            record.status == .valid && (record.host == hostName || record.host?.split(separator: ".").first.map(String.init) == hostName)
                && (service == nil || record.service == service)
        }
        guard !matches.isEmpty else {
            throw ChpkiError.input(file: nil, field: "SERIAL|HOST[/SERVICE]", "'\(target)' matches no valid certificate of this CA")
        }
        return matches.map(\.serial)
    }
}
