import Foundation

/// `chpki revoke` and `chpki crl`: revocation and a freshly signed CRL, one transaction each.
public enum RevokeCommand {
    struct Report: Encodable {
        var revoked: [String]
        var alreadyRevoked: [String]
        var crlNumber: Int
        var crl: String

        enum CodingKeys: String, CodingKey {
            case revoked, crl
            case alreadyRevoked = "already_revoked"
            case crlNumber = "crl_number"
        }
    }

    /// Revokes `target`. Idempotent: a target that is already revoked (e.g. a re-run after a run that
    /// was killed) is reported as such and the CRL is signed again, so the run completes.
    public static func revoke(_ target: String, reason: RevocationReason, passphraseFile: String?, settings: Settings, reporter: Reporter) throws {
        let inventory = try settings.inventoryIfPresent()
        let session = try settings.openCA(.change, passphraseFile: passphraseFile, reporter: reporter)
        let certificates = try session.certificates()
        var selection = try select(target, in: certificates, inventory: inventory)
        if reason == .keyCompromise {
            let chosen = selection.valid + selection.alreadyRevoked
            selection.valid += try KeyCompromise.sharingKeys(with: chosen, in: certificates, now: session.now)
        }
        let crl = try session.revokeAndPublishCRL(selection.valid, reason: reason)
        let path = session.directory.file(CADirectory.crl)
        try reporter.emit(Report(revoked: selection.valid.map(\.hex), alreadyRevoked: selection.alreadyRevoked.map(\.hex),
                                 crlNumber: crl.number, crl: path))
        for serial in selection.valid { reporter.line("revoked \(serial.hex) (\(reason.rawValue))") }
        for serial in selection.alreadyRevoked { reporter.line("\(serial.hex) was already revoked") }
        reporter.line("signed CRL number \(crl.number): \(path)")
    }

    /// `lifetime` is `--lifetime`'s text (a duration, to the second), or `--days`'s whole number of
    /// days from before durations existed; nil: `CRLPublisher.defaultLifetime`.
    public static func crl(lifetime text: String?, days: Int?, passphraseFile: String?, settings: Settings, reporter: Reporter) throws {
        let lifetime = try crlLifetime(text, days: days)
        let session = try settings.openCA(.change, passphraseFile: passphraseFile, reporter: reporter)
        let crl = try session.revokeAndPublishCRL([], lifetime: lifetime)
        let path = session.directory.file(CADirectory.crl)
        try reporter.emit(Report(revoked: [], alreadyRevoked: [], crlNumber: crl.number, crl: path))
        reporter.line("signed CRL number \(crl.number), valid \(lifetime): \(path)")
    }

    static func crlLifetime(_ text: String?, days: Int?) throws -> Period {
        let lifetime: Period
        switch (text, days) {
        case (.some, .some):
            throw ChpkiError.input(.usageConflictingOptions, file: nil, field: "--days", "give --lifetime or --days, not both")
        case let (.some(text), nil):
            guard let period = Period(text) else { throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--lifetime", "'\(text)' is not \(Period.help)") }
            lifetime = period
        case let (nil, .some(days)):
            guard days > 0 else { throw ChpkiError.input(.usageInvalidValue, file: nil, field: "--days", "must be at least 1") }
            lifetime = Period(amount: min(days, Int(Int32.max)), unit: .days)
        case (nil, nil):
            return CRLPublisher.defaultLifetime
        }
        let longest = CRLPublisher.longestLifetime
        guard lifetime.after(Date(timeIntervalSince1970: 0)) <= longest.after(Date(timeIntervalSince1970: 0)) else {
            throw ChpkiError.input(.usageInvalidValue, file: nil, field: text == nil ? "--days" : "--lifetime", "\(lifetime) is longer than a CRL may be valid (\(longest))")
        }
        return lifetime
    }

    struct Selection {
        var valid: [SerialNumber]
        var alreadyRevoked: [SerialNumber]
    }

    /// Serials for `SERIAL`, `HOST` or `HOST/SERVICE`; refuses a target that matches nothing. A host
    /// with no valid certificate left but revoked ones matches those (already revoked).
    static func select(_ target: String, in certificates: [IssuedCertificate], inventory: Inventory?) throws -> Selection {
        let leaves = certificates.filter { !$0.kind.isAuthority }
        if let serial = SerialNumber(hex: target), let record = leaves.first(where: { $0.serial == serial }) {
            return record.status == .revoked ? Selection(valid: [], alreadyRevoked: [record.serial])
                : Selection(valid: [record.serial], alreadyRevoked: [])
        }
        let parts = target.split(separator: "/", maxSplits: 1).map(String.init)
        let hostName = parts.first.map { name in inventory?.host(named: name)?.name ?? name.lowercased() } ?? ""
        let service = parts.count == 2 ? parts[1] : nil
        let ofTarget = leaves.filter { record in
            (record.host == hostName || record.host?.split(separator: ".").first.map(String.init) == hostName)
                && (service == nil || record.service == service)
        }
        let valid = ofTarget.filter { $0.status == .valid }
        if !valid.isEmpty { return Selection(valid: valid.map(\.serial), alreadyRevoked: []) }
        let revoked = ofTarget.filter { $0.status == .revoked }
        guard !revoked.isEmpty else {
            throw ChpkiError.input(.revokeNoMatch, file: nil, field: "SERIAL|HOST[/SERVICE]", "'\(target)' matches no valid certificate of this CA")
        }
        return Selection(valid: [], alreadyRevoked: revoked.map(\.serial))
    }
}
