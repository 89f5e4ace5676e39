import Foundation

/// `chpki verify`: the CA's valid certificates against their keys, issuer, validity and profile, or
/// (`--bundle DIR`) laid-out host trees against SPEC §4. Exit 1 with one line per violation.
public enum VerifyCommand {
    struct Report: Encodable {
        var checked: [String]
        var violations: [String]
        var warnings: [String]
    }

    /// The root `--installed` checks when no `--bundle DIR` is given: this host's own.
    public static let installedRoot = "/"

    /// `installed`: `bundle` (default `/`) is one host's installed root, checked with its owners
    /// against this host's users and groups, and on `/` with the system trust bundle.
    public static func run(bundle: String?, installed: Bool = false, passphraseFile: String? = nil, settings: Settings,
                           reporter: Reporter) throws {
        let now = try settings.now()
        var checked: [String] = []
        var violations: [String] = []
        var warnings: [String] = []
        let bundle = installed ? bundle ?? installedRoot : bundle
        if let bundle {
            let verifier = BundleVerifier(now: now, installed: installed)
            if installed && (try? FileStatus.of(bundle))?.kind != .directory {
                throw ChpkiError.input(.fileMissing, file: bundle, field: "--bundle", "no such directory (the host's installed root)")
            }
            let trees = installed ? [bundle] : try BundleVerifier.hostTrees(in: bundle)
            for tree in trees {
                checked.append(tree)
                let result = verifier.verify(tree: tree)
                violations += result.violations
                warnings += result.warnings
            }
        } else {
            let profiles = try settings.inventoryIfPresent().map { Dictionary(NamingRules.profiles(for: $0).map { ($0.identity, $0) },
                                                                               uniquingKeysWith: { first, _ in first }) }
            let session = try settings.openCA(.read, passphraseFile: passphraseFile, reporter: reporter)
            let leaves = try session.validLeaves()
            let keys = try session.leafKeys(leaves.map(\.serial))
            for record in leaves {
                checked.append(record.serial.hex)
                violations += problems(record, key: keys[record.serial], session: session, profile: profiles?[record.identity], now: now)
            }
            violations += try CRLFreshness.due(try session.publishedCRL(), now: now).map(\.line)
        }
        try reporter.emit(Report(checked: checked, violations: violations, warnings: warnings))
        for warning in warnings { reporter.note("warning: \(warning)") }
        for violation in violations { reporter.line(violation) }
        guard violations.isEmpty else {
            throw ChpkiError(.checkVerifyFailed, "\(violations.count) violation(s) in \(checked.count) \(bundle == nil ? "certificates" : "host trees")")
        }
        reporter.line("ok: \(checked.count) \(bundle == nil ? "certificates" : "host trees") checked, no violation")
    }

    static func problems(_ record: IssuedCertificate, key: SecretBytes?, session: CASession, profile: CertificateProfile?, now: Date) -> [String] {
        let label = "\(record.serial.hex) (\(record.kind.rawValue) \(record.service ?? "") \(record.name ?? record.subject))"
        guard let certificate = try? record.certificate() else { return ["\(label): not a certificate"] }
        var problems: [String] = []
        if let key, key.withBytes({ (try? PrivateKey(pem: Data($0)))?.matches(certificate) }) != true {
            problems.append("\(label): the stored key does not match the certificate")
        }
        // Its own issuer: growth leaves several intermediates current at once.
        let issuer = (try? session.issuer(of: record)?.certificate()) ?? session.issuingCertificate
        if !certificate.isSigned(by: issuer) { problems.append("\(label): not signed by the issuing CA") }
        if certificate.notAfter <= now { problems.append("\(label): expired \(RFC3339.format(certificate.notAfter))") }
        if certificate.notAfter > issuer.notAfter { problems.append("\(label): outlives the issuing CA") }
        if let profile {
            if Set(certificate.subjectAlternativeNames) != Set(profile.subjectAlternativeNames) {
                problems.append("\(label): SANs differ from the inventory's (run chpki issue)")
            }
            if certificate.subject != profile.subject { problems.append("\(label): subject differs from the inventory's") }
        }
        return problems
    }
}
