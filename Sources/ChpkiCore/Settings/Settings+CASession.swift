import Foundation

extension Settings {
    /// Opens the CA of these settings through a `CASession` (lock, recovery, load), telling the
    /// operator when another chpki holds the lock, and putting the modes of `ca/` back (SPEC §6).
    public func openCA(_ access: CASession.Access, passphraseFile: String? = nil, reporter: Reporter) throws -> CASession {
        let path = caDirectory.path
        for fixed in try CAPermissions.restore(caDirectory) { reporter.note(fixed) }
        return try CASession.open(caDirectory, access: access, passphrase: PassphraseSource(file: passphraseFile, environment: environment),
                                  rootPassphrase: .root(file: rootPassphraseFile, environment: environment), now: try now(), waiting: { reporter.progress("waiting for another chpki holding the lock on \(path)") })
    }
}
