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

    struct Line: Encodable {
        var action: IssuancePlan.Action
        var reason: String
        var kind: String
        @NullEncoded var service: String?
        @NullEncoded var host: String?
        var name: String
        @NullEncoded var serial: String?
        @NullEncoded var notAfter: Date?

        enum CodingKeys: String, CodingKey {
            case action, reason, kind, service, host, name, serial
            case notAfter = "not_after"
        }

    }

    struct Report: Encodable {
        var dryRun: Bool
        var certificates: [Line]
        var summary: [String: Int]

        enum CodingKeys: String, CodingKey {
            case dryRun = "dry_run", certificates, summary
        }
    }

    /// `chpki issue`: plan against the inventory, then sign what the plan says, all under the CA lock.
    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws {
        var clock = Stopwatch()
        let inventory = try settings.requireInventory()
        reporter.detail("read \(settings.inventoryPath): \(clock.lap())")
        let authority = try CertificateAuthority(directory: settings.caDirectory)
        let profiles = NamingRules.profiles(for: inventory)
        try NameConstraintsCheck.check(profiles, against: authority, source: inventory.path)
        let now = try settings.now()
        reporter.detail("opened the CA, \(profiles.count) certificates in the inventory: \(clock.lap())")
        if options.dryRun {
            let plan = IssuancePlan(profiles: profiles, existing: try authority.database.validLeaves(), now: now,
                                    issuerSerial: authority.issuingCertificate.serial.hex)
            try report(plan.items.map { line($0, issued: nil) }, dryRun: true, reporter: reporter)
            return
        }
        let lines = try withLockedCA(authority, reporter: reporter) {
            let plan = IssuancePlan(profiles: profiles, existing: try authority.database.validLeaves(), now: now,
                                    issuerSerial: authority.issuingCertificate.serial.hex)
            reporter.detail("planned \(plan.work.count) to sign: \(clock.lap())")
            let issued = try sign(plan.work, authority: authority, settings: settings, passphraseFile: options.passphraseFile,
                                  now: now, reporter: reporter)
            var issuedByIdentity: [CertificateIdentity: CertificateRecord] = [:]
            for certificate in issued { issuedByIdentity[certificate.item.profile.identity] = certificate.record }
            return plan.items.map { line($0, issued: issuedByIdentity[$0.profile.identity]) }
        }
        reporter.detail("total since the inventory was read: \(clock.lap())")
        try report(lines, dryRun: false, reporter: reporter)
    }

    /// A one-off certificate (`issue server|client|admin`): always freshly keyed and signed; a valid
    /// certificate of the same identity is superseded. With `output`, also writes `<stem>.crt` and `<stem>.key`.
    public static func runOneOff(_ profile: CertificateProfile, fileStem: String, output: String?, passphraseFile: String?,
                                 settings: Settings, reporter: Reporter) throws {
        let authority = try CertificateAuthority(directory: settings.caDirectory)
        try NameConstraintsCheck.check([profile], against: authority, source: nil)
        if let output { try checkOutputDirectory(output) }
        let now = try settings.now()
        let issued = try withLockedCA(authority, reporter: reporter) {
            let previous = try authority.database.validLeaves().first { $0.identity == profile.identity }
            let item = IssuancePlan.Item(profile: profile, action: previous == nil ? .issued : .reissued,
                                         reason: previous == nil ? "requested" : "requested; supersedes \(previous!.serial)",
                                         previous: previous, keepsKey: false)
            return try sign([item], authority: authority, settings: settings, passphraseFile: passphraseFile, now: now, reporter: reporter)[0]
        }
        var written: [String] = []
        if let output {
            let certificatePath = Path.join(output, "\(fileStem).crt")
            let keyPath = Path.join(output, "\(fileStem).key")
            try AtomicFile.write(Data(issued.record.certificatePEM.utf8), to: certificatePath, mode: 0o644)
            try AtomicFile.write(Data((issued.record.privateKeyPEM ?? "").utf8), to: keyPath, mode: 0o600)
            written = [certificatePath, keyPath]
        }
        try report([line(issued.item, issued: issued.record)], dryRun: false, reporter: reporter)
        for path in written { reporter.line("wrote \(path)") }
    }

    /// The output directory exists, or is created (0755) when its parent does.
    static func checkOutputDirectory(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ChpkiError.input(file: path, field: "--out", "exists and is not a directory") }
            return
        }
        let parent = Path.parent(of: path)
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ChpkiError.input(file: path, field: "--out", "its parent \(parent) does not exist")
        }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw ChpkiError.input(file: path, field: "--out", POSIXFailure.last("cannot create the directory").message)
        }
        chmod(path, 0o755)
    }

    /// Holds the CA directory's lock for `body` and rewrites index.txt after it, still under the lock.
    static func withLockedCA<T>(_ authority: CertificateAuthority, reporter: Reporter, _ body: () throws -> T) throws -> T {
        let lock = try DirectoryLock(directory: authority.directory.path) {
            reporter.progress("waiting for another chpki holding the lock on \(authority.directory.path)")
        }
        return try withExtendedLifetime(lock) { try body() }
    }

    static func sign(_ work: [IssuancePlan.Item], authority: CertificateAuthority, settings: Settings, passphraseFile: String?,
                     now: Date, reporter: Reporter) throws -> [BatchIssuer.Issued] {
        guard !work.isEmpty else { return [] }
        var clock = Stopwatch()
        let signer = try authority.signer {
            try PassphraseSource(file: passphraseFile, environment: settings.environment).existingPassphrase(purpose: "the CA key")
        }
        reporter.detail("opened the CA key: \(clock.lap())")
        let progress = reporter.progress(total: work.count, label: "signing certificates")
        let issued = try BatchIssuer.issue(work, authority: authority, signer: signer, now: now, progress: progress) { phase in
            reporter.detail("\(phase): \(clock.lap())")
        }
        try authority.writeIndex(now: now)
        reporter.detail("wrote index.txt: \(clock.lap())")
        return issued
    }

    static func line(_ item: IssuancePlan.Item, issued: CertificateRecord?) -> Line {
        let record = issued ?? (item.action == .unchanged ? item.previous : nil)
        return Line(action: item.action, reason: item.reason, kind: item.profile.identity.kind.rawValue,
                    service: item.profile.identity.service, host: item.profile.identity.host, name: item.profile.identity.name,
                    serial: record?.serial, notAfter: record?.notAfter)
    }

    static func report(_ lines: [Line], dryRun: Bool, reporter: Reporter) throws {
        var summary: [String: Int] = [:]
        for action in [IssuancePlan.Action.issued, .reissued, .renewed, .unchanged] {
            summary[action.rawValue] = lines.filter { $0.action == action }.count
        }
        try reporter.emit(Report(dryRun: dryRun, certificates: lines, summary: summary))
        guard !reporter.json, !reporter.quiet else { return }
        let rows = lines.map { line -> [String] in
            let action = dryRun && line.action != .unchanged ? "would be \(line.action.rawValue)" : line.action.rawValue
            let note = line.action == .reissued || line.action == .renewed ? line.reason : ""
            return [action, line.kind, line.service ?? "-", line.host ?? "-", line.name == line.host ? "" : line.name,
                    line.serial ?? "", note]
        }
        var text = Table.render(header: ["ACTION", "KIND", "SERVICE", "HOST", "NAME", "SERIAL", "NOTE"], rows: rows) + "\n"
        text += "\(summary["issued"]!) issued, \(summary["reissued"]!) reissued, \(summary["renewed"]!) renewed, \(summary["unchanged"]!) unchanged"
        text += dryRun ? " (dry run: nothing was changed)" : ""
        reporter.line(text)
    }
}
