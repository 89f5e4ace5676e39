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
        let authority = try CertificateAuthority(directory: settings.caDirectory)
        let now = try settings.now()
        if finish {
            try IssueCommand.withLockedCA(authority, reporter: reporter) { _ = try CARotation.finish(authority, now: now) }
            try reporter.emit(Report(action: "finished", root: nil, crossSigned: nil))
            reporter.line("retired the previous root into \(authority.directory.file(CADirectory.retired)); trust files now hold only \(authority.root.subject.rfc4514)")
            return
        }
        let inventory = try settings.inventoryIfPresent()
        let started = try IssueCommand.withLockedCA(authority, reporter: reporter) {
            try CARotation.start(authority, inventory: inventory, passphrase: {
                try PassphraseSource(file: passphraseFile, environment: settings.environment).existingPassphrase(purpose: "the CA key")
            }, now: now)
        }
        try reporter.emit(Report(action: "started", root: .init(started.root), crossSigned: .init(started.crossSigned)))
        reporter.line("New root: \(started.root.subject.rfc4514), serial \(started.root.serial.hex), valid until \(RFC3339.format(started.root.notAfter))")
        reporter.line("  cross-signed by the old root: \(authority.directory.file(CADirectory.crossSigned))")
        reporter.line("  both roots: \(authority.directory.file(CADirectory.trustBundle)); bundles carry both until --finish")
        reporter.line("Next: chpki issue (re-issues every leaf under the new root), chpki bundle, install; then chpki rotate-ca --finish")
    }
}
