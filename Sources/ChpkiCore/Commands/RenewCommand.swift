import Foundation

/// `chpki renew`: re-issues what is due with the same names, usages, key type and lifetime.
public enum RenewCommand {
    public static func run(within: String?, rekey: Bool, passphraseFile: String?, settings: Settings, reporter: Reporter) throws {
        let window = try within.map { text -> Period in
            guard let period = Period(text) else { throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--within", "'\(text)' is not \(Period.help)") }
            return period
        }
        let inventory = try settings.inventoryIfPresent()
        let renewBefore = window ?? inventory?.defaults.renewBefore ?? Defaults.renewBefore
        let session = try settings.openCA(.change, passphraseFile: passphraseFile, reporter: reporter)
        // A missing or wrong passphrase is refused now, not on the day something is due.
        try session.unlockOperations()
        // Due: within the window, or issued by a CA that a rotation replaced (a leaf of any current
        // intermediate stays: growth adds intermediates beside the one it signed with).
        let current = session.currentAuthoritySerials
        let due = try session.validLeaves().filter {
            RenewalRule.isDue(notAfter: $0.notAfter, window: renewBefore, now: session.now, issuerEnds: session.issuingCertificate.notAfter) || !($0.issuerSerial.map(current.contains) ?? false)
        }
        let oneOffs = try session.oneOffSerials()
        let items = try due.map { record in
            var item = IssuancePlan.Item(profile: try profile(renewing: record, renewBefore: renewBefore), action: .renewed,
                                         reason: "expires \(RFC3339.format(record.notAfter))" + (rekey ? ", new key" : ""),
                                         previous: record, keepsKey: !rekey)
            item.oneOff = oneOffs.contains(record.serial)
            return item
        }
        // After growth the newest intermediate covers the inventory of today: a leaf whose names it
        // does not cover (its host left the inventory) would come out unverifiable, so it is left
        // for `issue --prune` to retire rather than renewed.
        let constraints = session.issuingNameConstraints
        let outside = items.filter { !NameConstraintsCheck.violations([$0.profile], against: constraints).isEmpty }
        if !outside.isEmpty {
            reporter.note("\(outside.count) certificate(s) not renewed: their names are outside the issuing CA's name constraints "
                          + "(first: \(outside[0].profile.identity.name)); if they left the inventory, 'chpki issue --prune' retires them")
        }
        let outsideSerials = Set(outside.compactMap { $0.previous?.serial })
        let renewable = items.filter { item in item.previous.map { !outsideSerials.contains($0.serial) } ?? true }
        let issued = try session.issue(renewable) { reporter.detail($0) }
        try IssuanceReport.report(issued.map { IssuanceReport.line($0.item, issued: $0) }, dryRun: false, reporter: reporter)
    }

    /// The profile a certificate was made from, read back from the certificate itself, with the
    /// lifetime it had (less the backdating).
    static func profile(renewing record: IssuedCertificate, renewBefore: Period) throws -> CertificateProfile {
        let certificate = try record.certificate()
        guard let keyType = record.keyType else {
            throw ChpkiError.input(.renewUnsupportedKey, file: nil, field: record.serial.hex, "its key type cannot be renewed by chpki")
        }
        let lifetime = certificate.notAfter.timeIntervalSince(certificate.notBefore) - CertificateProfile.backdating
        return CertificateProfile(
            identity: record.identity, subject: certificate.subject, subjectAlternativeNames: certificate.subjectAlternativeNames,
            extendedKeyUsage: certificate.extendedKeyUsageNames.compactMap(ExtendedKeyUsage.init(rawValue:)), keyType: keyType,
            validity: Period(seconds: lifetime), renewBefore: renewBefore)
    }
}
