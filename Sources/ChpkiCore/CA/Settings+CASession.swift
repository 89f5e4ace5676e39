import Foundation

extension Settings {
    /// Opens the CA of these settings through a `CASession` (lock, recovery, load), telling the
    /// operator when another chpki holds the lock.
    public func openCA(_ access: CASession.Access, passphraseFile: String? = nil, reporter: Reporter) throws -> CASession {
        let path = caDirectory.path
        return try CASession.open(caDirectory, access: access, passphrase: PassphraseSource(file: passphraseFile, environment: environment),
                                  rootPassphrase: .root(file: rootPassphraseFile, environment: environment), now: try now(), waiting: { reporter.progress("waiting for another chpki holding the lock on \(path)") })
    }
}
