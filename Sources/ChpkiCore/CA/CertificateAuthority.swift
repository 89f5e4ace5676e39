import Foundation

/// An existing CA directory, opened: its certificates, its database, and (once unlocked) the key
/// that signs leaves — the intermediate's when there is one, else the root's.
public final class CertificateAuthority {
    public let directory: CADirectory
    public let root: Certificate
    public let intermediate: Certificate?
    public let database: CADatabase

    /// The certificate whose key signs leaves and CRLs.
    public var issuingCertificate: Certificate { intermediate ?? root }
    var issuingKeyFile: String { directory.file(intermediate == nil ? CADirectory.rootKey : CADirectory.intermediateKey) }

    public init(directory: CADirectory) throws {
        self.directory = directory
        let rootPath = directory.file(CADirectory.rootCertificate)
        let databasePath = directory.file(CADatabase.fileName)
        guard FileManager.default.fileExists(atPath: rootPath), FileManager.default.fileExists(atPath: databasePath) else {
            throw ChpkiError.input(file: directory.path, field: "--ca-dir", "no CA here (root.pem and ca.db are missing); create one with 'chpki init-ca'")
        }
        root = try Self.readCertificate(rootPath)
        intermediate = directory.hasIntermediate ? try Self.readCertificate(directory.file(CADirectory.intermediateCertificate)) : nil
        database = try CADatabase(path: databasePath)
    }

    static func readCertificate(_ path: String) throws -> Certificate {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ChpkiError.input(file: path, field: nil, "cannot read the file")
        }
        do { return try Certificate(pem: data) } catch {
            throw ChpkiError.input(file: path, field: nil, "not a PEM certificate: \(error)")
        }
    }

    /// True when the issuing key is encrypted, so a passphrase must be asked for.
    public var issuingKeyIsEncrypted: Bool {
        guard let data = FileManager.default.contents(atPath: issuingKeyFile) else { return false }
        return (try? PEMBlock.all(in: data).first?.label) == "ENCRYPTED PRIVATE KEY"
    }

    /// Decrypts the issuing key (the one scrypt of a run) and checks it belongs to the issuing certificate.
    public func signer(passphrase: () throws -> Passphrase) throws -> Signer {
        let path = issuingKeyFile
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ChpkiError.input(file: path, field: nil, "cannot read the CA key")
        }
        let key: PrivateKey
        do {
            key = try PrivateKey(pem: data, passphrase: issuingKeyIsEncrypted ? try passphrase() : nil)
        } catch let error as OpenSSLError {
            throw ChpkiError.input(file: path, field: "passphrase", error.isBadDecrypt || issuingKeyIsEncrypted
                ? "the passphrase does not open the CA key" : "cannot read the CA key: \(error)")
        }
        guard key.matches(issuingCertificate) else {
            throw ChpkiError.input(file: path, field: nil, "this key does not belong to \(Path.name(of: issuingKeyFile).replacingOccurrences(of: ".key", with: ".pem"))")
        }
        return Signer(certificate: issuingCertificate, key: key)
    }

    /// Rewrites index.txt (and its .attr) from the database, atomically.
    public func writeIndex(now: Date) throws {
        let records = try database.indexEntries()
        try AtomicFile.write(Data(OpenSSLIndex.render(records, now: now).utf8), to: directory.file(OpenSSLIndex.fileName))
        try AtomicFile.write(Data(OpenSSLIndex.attributes.utf8), to: directory.file(OpenSSLIndex.attributesFileName))
    }
}
