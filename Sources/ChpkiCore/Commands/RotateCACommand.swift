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

    public static func run(finish: Bool, passphraseFile: String?, settings: Settings, reporter: Reporter) throws {
        let inventory = finish ? nil : try settings.inventoryIfPresent()
        let session = try settings.openCA(.change, passphraseFile: passphraseFile, reporter: reporter)
        let directory = session.directory
        if finish {
            _ = try CARotation.finish(session)
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
