import Foundation

/// `chpki issue`: every certificate the inventory implies that is missing, changed or due, a new
/// issuing intermediate when the inventory grew past the current one's name constraints, and the
/// retirement of what the inventory no longer wants (`--prune`); and the one-off `issue server|client|admin`.
public enum IssueCommand {
    public struct Options: Sendable {
        public var dryRun = false
        public var prune = false
        public var passphraseFile: String?
        public init() {}
    }

    /// `chpki issue`: plan against the inventory, then sign what the plan says, all under the CA lock.
    /// Returns how many certificates wait for `--prune` (for the next step the CLI prints).
    @discardableResult
    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws -> Int {
        var clock = Stopwatch()
        let inventory = try settings.requireInventory()
        reporter.detail("read \(settings.inventoryPath): \(clock.lap())")
        let session = try settings.openCA(options.dryRun ? .read : .change, passphraseFile: options.passphraseFile, reporter: reporter)
        // The keys' KDF runs on another core while the plan is made (read-only) ...
        if !options.dryRun { try session.startUnlockingOperations() }
        let profiles = NamingRules.profiles(for: inventory)
        let valid = try session.validLeaves()
        let oneOffs = try session.oneOffSerials()
        let growth = try IssuingAuthorities.decide(session, profiles: profiles, inventory: inventory,
                                                   live: valid.filter { oneOffs.contains($0.serial) }, source: inventory.path)
        // ... and a missing or wrong passphrase is refused here, before anything is signed, even
        // when nothing is due (not on the day something is).
        if !options.dryRun { try session.unlockOperations() }
        if !options.dryRun, case .newIntermediate = growth { _ = try session.unlockRootSigner(purpose: IssuingAuthorities.growthPurpose) }
        reporter.detail("opened the CA, \(profiles.count) certificates in the inventory: \(clock.lap())")
        let plan = IssuancePlan(profiles: profiles, existing: valid, now: session.now, acceptedIssuers: session.currentAuthoritySerials,
                                issuerEnds: session.issuingCertificate.notAfter)
        let retirement = RetirementPlan(profiles: profiles, plan: plan, live: try session.liveLeaves(),
                                        oneOffs: oneOffs, liveIssuers: session.liveAuthoritySerials)
        if options.dryRun {
            return try IssuanceReport.report(plan.items.map { IssuanceReport.line($0, issued: nil) }, growth: .init(growth, certificate: nil),
                                             retirement: retirement, pruned: false, prune: options.prune, dryRun: true, reporter: reporter)
        }
        reporter.detail("planned \(plan.work.count) to sign: \(clock.lap())")
        let progress = reporter.progress(total: plan.work.count, label: "signing certificates")
        var intermediate: Certificate?
        let issued: [BatchIssuer.Issued]
        if case let .newIntermediate(constraints, _) = growth {
            (intermediate, issued) = try session.issue(plan.work, growingWith: constraints, progress: progress) { phase in reporter.detail("\(phase): \(clock.lap())") }
        } else {
            issued = try session.issue(plan.work, progress: progress) { phase in reporter.detail("\(phase): \(clock.lap())") }
        }
        var issuedByIdentity: [CertificateIdentity: BatchIssuer.Issued] = [:]
        for certificate in issued { issuedByIdentity[certificate.item.profile.identity] = certificate }
        // Retired after the replacements are recorded: a run killed in between leaves the old
        // certificates superseded with other names, which the next `issue --prune` retires.
        let pruned = options.prune && !retirement.items.isEmpty
        if pruned {
            try session.revokeAndPublishCRLs(retirement.items.map { ($0.certificate.serial, $0.reason) })
            reporter.detail("revoked \(retirement.items.count) and signed the CRLs: \(clock.lap())")
        }
        let lines = plan.items.map { IssuanceReport.line($0, issued: issuedByIdentity[$0.profile.identity]) }
        reporter.detail("total since the inventory was read: \(clock.lap())")
        return try IssuanceReport.report(lines, growth: .init(growth, certificate: intermediate), retirement: retirement, pruned: pruned,
                                         prune: options.prune, dryRun: false, reporter: reporter)
    }

    /// A one-off certificate (`issue server|client|admin`): always freshly keyed and signed; a valid
    /// certificate of the same identity is superseded. A name the issuing intermediate does not
    /// cover gets a new intermediate, as for the inventory. With `output`, also writes `<stem>.crt` and `<stem>.key`.
    public static func runOneOff(_ profile: CertificateProfile, fileStem: String, output: String?, passphraseFile: String?,
                                 settings: Settings, reporter: Reporter) throws {
        if let output { try OutputDirectory.prepare(output) }
        let inventory = try settings.inventoryIfPresent()
        let session = try settings.openCA(.change, passphraseFile: passphraseFile, reporter: reporter)
        try session.unlockOperations()
        let valid = try session.validLeaves()
        let oneOffs = try session.oneOffSerials()
        let growth = try IssuingAuthorities.decide(session, profiles: [profile], inventory: inventory,
                                                   live: valid.filter { oneOffs.contains($0.serial) }, source: nil)
        if case .newIntermediate = growth { _ = try session.unlockRootSigner(purpose: IssuingAuthorities.growthPurpose) }
        let previous = valid.first { $0.identity == profile.identity }
        var item = IssuancePlan.Item(profile: profile, action: previous == nil ? .issued : .reissued,
                                     reason: previous.map { "requested; supersedes \($0.serial.hex)" } ?? "requested",
                                     previous: previous, keepsKey: false)
        item.oneOff = true
        var intermediate: Certificate?
        let issued: BatchIssuer.Issued
        if case let .newIntermediate(constraints, _) = growth {
            let grown = try session.issue([item], growingWith: constraints)
            (intermediate, issued) = (grown.intermediate, grown.issued[0])
        } else {
            issued = try session.issue([item])[0]
        }
        var written: [String] = []
        if let output {
            let certificatePath = Path.join(output, "\(fileStem).crt")
            let keyPath = Path.join(output, "\(fileStem).key")
            try AtomicFile.write(Data(issued.signed.pem.utf8), to: certificatePath, mode: 0o644)
            try issued.key.withBytes { try AtomicFile.write($0, to: keyPath, mode: 0o600) }
            written = [certificatePath, keyPath]
            // Signed by an intermediate: the leaf and its issuer, as a server presents them.
            if let issuer = session.authorities.first(where: { $0.serial == session.issuing.serial }), issuer.kind == .intermediate {
                let chainPath = Path.join(output, "\(fileStem).chain.crt")
                try AtomicFile.write(Data((issued.signed.pem + issuer.certificatePEM).utf8), to: chainPath, mode: 0o644)
                written.insert(chainPath, at: 1)
            }
        }
        try IssuanceReport.report([IssuanceReport.line(issued.item, issued: issued)], growth: .init(growth, certificate: intermediate),
                                  retirement: nil, pruned: false, prune: false, dryRun: false, reporter: reporter)
        for path in written { reporter.line("wrote \(path)") }
    }
}
