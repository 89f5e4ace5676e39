import Foundation

/// `chpki rotate-ca [--finish]`.
public enum RotateCACommand {
    struct Report: Encodable {
        var action: String
        var root: InspectCommand.CertificateItem?
        var crossSigned: InspectCommand.CertificateItem?

        enum CodingKeys: String, CodingKey {
            case action, root
            case crossSigned = "cross_signed"
        }
    }

    /// `state`: the install records `--finish` checks (default `<ca-dir>/installed`);
    /// `forceUnrecorded`: finish without them (hosts installed another way: the operator vouches).
    public static func run(finish: Bool, passphraseFile: String?, settings: Settings, reporter: Reporter,
                           state: String? = nil, forceUnrecorded: Bool = false) throws {
        let inventory = finish && forceUnrecorded ? nil : try settings.inventoryIfPresent()
        var installed: CARotation.Installed?
        if finish && !forceUnrecorded {
            guard let inventory else {
                throw ChpkiError.input(.fileMissing, file: settings.inventoryPath, field: "--finish",
                    "missing: --finish checks each inventory host's install record (or give --force-unrecorded)")
            }
            installed = CARotation.Installed(hosts: RotationGate.hosts(of: inventory), state: state ?? InstalledRecords.defaultDirectory(caDirectory: settings.caDirectory.path))
        }
        let session = try settings.openCA(.change, passphraseFile: passphraseFile, reporter: reporter)
        let directory = session.directory
        if finish {
            if forceUnrecorded { reporter.note("--force-unrecorded: the hosts' install records were not checked") }
            _ = try CARotation.finish(session, installed: installed)
            try reporter.emit(Report(action: "finished", root: nil, crossSigned: nil))
            reporter.line("retired the previous root into \(directory.file(CADirectory.retired)); trust files now hold only \(session.root.subject.rfc4514)")
            return
        }
        let started = try CARotation.start(session, inventory: inventory)
        try reporter.emit(Report(action: "started", root: .init(started.root), crossSigned: .init(started.crossSigned)))
        reporter.line("New root: \(started.root.subject.rfc4514), serial \(started.root.serial.hex), valid until \(RFC3339.format(started.root.notAfter))")
        reporter.line("  cross-signed by the old root: \(directory.file(CADirectory.crossSigned))")
        reporter.line("  both roots: \(directory.file(CADirectory.trustBundle)); bundles carry both until --finish")
    }
}
