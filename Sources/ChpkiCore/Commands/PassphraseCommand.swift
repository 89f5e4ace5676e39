import Foundation

/// `chpki passphrase change --which root|operations` (SPEC §6 "Two secrets"): reads the old
/// passphrase from its usual sources, the new one from `--new-passphrase-file`,
/// `CHPKI_NEW_PASSPHRASE` or a prompt (twice), and re-wraps the keys in one transaction. On a CA
/// made with one passphrase, `--which root` gives the root a passphrase of its own (migration).
public enum PassphraseCommand {
    public struct Options: Sendable {
        public var which: CASecret = .operations
        public var passphraseFile: String?
        public var newPassphraseFile: String?
        public init() {}
    }

    struct Report: Encodable {
        var which: String
        var rewrapped: [String]
        var leafKeyWrapChanged: Bool
        var split: Bool
        var rootKeyApart: Bool

        enum CodingKeys: String, CodingKey {
            case which, rewrapped, split
            case leafKeyWrapChanged = "leaf_key_wrap_changed"
            case rootKeyApart = "root_key_apart"
        }
    }

    public static func change(_ options: Options, settings: Settings, reporter: Reporter) throws {
        let newSource = PassphraseSource.new(file: options.newPassphraseFile, environment: settings.environment)
        let session = try settings.openCA(.change, passphraseFile: options.passphraseFile, reporter: reporter)
        let change = try session.changePassphrase(options.which) {
            try newSource.newPassphrase(purpose: "the \(options.which.rawValue) keys (new \(options.which.rawValue) passphrase)")
        }
        try reporter.emit(Report(which: change.which.rawValue, rewrapped: change.rewrapped.map(\.hex),
                                 leafKeyWrapChanged: change.leafKeyWrapChanged, split: change.split, rootKeyApart: change.rootKeyApart))
        let keys = change.rewrapped.count
        reporter.line("re-wrapped \(keys) CA key\(keys == 1 ? "" : "s")\(change.leafKeyWrapChanged ? " and the leaf-key data key" : "") under the new \(change.which.rawValue) passphrase, in one transaction")
        if change.split {
            reporter.line("the root key now has its own passphrase: issuing, renew, revoke, crl, bundle and verify need only the operations passphrase; "
                          + "growth beyond the name constraints and rotate-ca need \(PassphraseSource.rootFileOption) or \(PassphraseSource.rootEnvironmentVariable) as well")
        } else if !change.rootKeyApart {
            reporter.note("this CA has one passphrase for every key, the root's too; 'chpki passphrase change --which root' gives the root its own")
        }
        // The next step (SPEC §7 "Progress"): where the new secret must go.
        reporter.next([change.which == .operations
            ? "put the new operations passphrase where the weekly renewal reads it (CHPKI_PASSPHRASE_FILE in /etc/chpki/chpki.env) and nowhere else"
            : "keep the new root passphrase off the CA machine (removable media, a password manager): growth and rotate-ca ask for it"])
    }
}
