import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `chpki issue`: every certificate the inventory implies that is missing, changed or due; and the
/// one-off `issue server|client|admin`.
public enum IssueCommand {
    public struct Options: Sendable {
        public var dryRun = false
        public var passphraseFile: String?
        public init() {}
    }

    /// `chpki issue`: plan against the inventory, then sign what the plan says, all under the CA lock.
    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws {
        var clock = Stopwatch()
        let inventory = try settings.requireInventory()
        reporter.detail("read \(settings.inventoryPath): \(clock.lap())")
        let profiles = NamingRules.profiles(for: inventory)
        let session = try settings.openCA(options.dryRun ? .read : .change, passphraseFile: options.passphraseFile, reporter: reporter)
        try NameConstraintsCheck.check(profiles, against: session.issuingNameConstraints, source: inventory.path)
        reporter.detail("opened the CA, \(profiles.count) certificates in the inventory: \(clock.lap())")
        let plan = IssuancePlan(profiles: profiles, existing: try session.validLeaves(), now: session.now,
                                issuerSerial: session.issuing.serial)
        if options.dryRun {
            try IssuanceReport.report(plan.items.map { IssuanceReport.line($0, issued: nil) }, dryRun: true, reporter: reporter)
            return
        }
        reporter.detail("planned \(plan.work.count) to sign: \(clock.lap())")
        let progress = reporter.progress(total: plan.work.count, label: "signing certificates")
        let issued = try session.issue(plan.work, progress: progress) { phase in reporter.detail("\(phase): \(clock.lap())") }
        var issuedByIdentity: [CertificateIdentity: BatchIssuer.Issued] = [:]
        for certificate in issued { issuedByIdentity[certificate.item.profile.identity] = certificate }
        let lines = plan.items.map { IssuanceReport.line($0, issued: issuedByIdentity[$0.profile.identity]) }
        reporter.detail("total since the inventory was read: \(clock.lap())")
        try IssuanceReport.report(lines, dryRun: false, reporter: reporter)
    }

    /// A one-off certificate (`issue server|client|admin`): always freshly keyed and signed; a valid
    /// certificate of the same identity is superseded. With `output`, also writes `<stem>.crt` and `<stem>.key`.
    public static func runOneOff(_ profile: CertificateProfile, fileStem: String, output: String?, passphraseFile: String?,
                                 settings: Settings, reporter: Reporter) throws {
        if let output { try OutputDirectory.prepare(output) }
        let session = try settings.openCA(.change, passphraseFile: passphraseFile, reporter: reporter)
        try NameConstraintsCheck.check([profile], against: session.issuingNameConstraints, source: nil)
        let previous = try session.validLeaves().first { $0.identity == profile.identity }
        let item = IssuancePlan.Item(profile: profile, action: previous == nil ? .issued : .reissued,
                                     reason: previous.map { "requested; supersedes \($0.serial.hex)" } ?? "requested",
                                     previous: previous, keepsKey: false)
        let issued = try session.issue([item])[0]
        var written: [String] = []
        if let output {
            let certificatePath = Path.join(output, "\(fileStem).crt")
            let keyPath = Path.join(output, "\(fileStem).key")
            try AtomicFile.write(Data(issued.signed.pem.utf8), to: certificatePath, mode: 0o644)
            try issued.key.withBytes { try AtomicFile.write($0, to: keyPath, mode: 0o600) }
            written = [certificatePath, keyPath]
        }
        try IssuanceReport.report([IssuanceReport.line(issued.item, issued: issued)], dryRun: false, reporter: reporter)
        for path in written { reporter.line("wrote \(path)") }
    }
}
