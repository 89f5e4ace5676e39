import Foundation

/// `chpki renew`: re-issues what is due with the same names, usages, key type and lifetime.
public enum RenewCommand {
    public static func run(within: String?, rekey: Bool, passphraseFile: String?, settings: Settings, reporter: Reporter) throws {
        let window = try within.map { text -> Period in
            guard let period = Period(text) else { throw ChpkiError.input(file: nil, field: "--within", "'\(text)' is not \(Period.help)") }
            return period
        }
        let inventory = try settings.inventoryIfPresent()
        let renewBefore = window ?? inventory?.defaults.renewBefore ?? Defaults.renewBefore
        let authority = try CertificateAuthority(directory: settings.caDirectory)
        let now = try settings.now()
        let lines = try IssueCommand.withLockedCA(authority, reporter: reporter) { () -> [IssueCommand.Line] in
            // Due: within the window, or issued by a CA that a rotation replaced.
            let issuer = authority.issuingCertificate.serial.hex
            let due = try authority.database.validLeaves().filter { renewBefore.before($0.notAfter) <= now || $0.issuerSerial != issuer }
            let items = try due.map { record in
                IssuancePlan.Item(profile: try profile(renewing: record, renewBefore: renewBefore), action: .renewed,
                                  reason: "expires \(RFC3339.format(record.notAfter))" + (rekey ? ", new key" : ""),
                                  previous: record, keepsKey: !rekey && record.privateKeyPEM != nil)
            }
            let issued = try IssueCommand.sign(items, authority: authority, settings: settings, passphraseFile: passphraseFile,
                                               now: now, reporter: reporter)
            return issued.map { IssueCommand.line($0.item, issued: $0.record) }
        }
        try IssueCommand.report(lines, dryRun: false, reporter: reporter)
    }

    /// The profile a certificate was made from, read back from the certificate itself, with the
    /// lifetime it had (less the backdating).
    static func profile(renewing record: CertificateRecord, renewBefore: Period) throws -> CertificateProfile {
        let certificate = try Certificate(pem: Data(record.certificatePEM.utf8))
        guard let keyType = KeyType(rawValue: record.keyType) else {
            throw ChpkiError.input(file: nil, field: record.serial, "key type \(record.keyType) cannot be renewed by chpki")
        }
        let lifetime = certificate.notAfter.timeIntervalSince(certificate.notBefore) - CertificateProfile.backdating
        return CertificateProfile(
            identity: record.identity, subject: certificate.subject, subjectAlternativeNames: certificate.subjectAlternativeNames,
            extendedKeyUsage: certificate.extendedKeyUsageNames.compactMap(ExtendedKeyUsage.init(rawValue:)), keyType: keyType,
            validity: Period(amount: max(1, Int((lifetime / 86400).rounded())), unit: .days), renewBefore: renewBefore)
    }
}
