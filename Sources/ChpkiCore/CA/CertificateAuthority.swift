import Foundation

/// An existing CA directory, opened: its certificates, its database, and (once unlocked) the key
/// that signs leaves — the intermediate's when there is one, else the root's.
public final class CertificateAuthority {
    public let directory: CADirectory
    public let root: Certificate
    public let intermediate: Certificate?
    public let database: CADatabase

    /// The root being replaced while a rotation is under way (`previous-root.pem`), else nil.
    public var previousRoot: Certificate? {
        let path = directory.file(CADirectory.previousRoot)
        return FileManager.default.fileExists(atPath: path) ? try? Self.readCertificate(path) : nil
    }

    /// Every root a host must trust now: the root, and during a rotation the previous one too.
    public var trustedRoots: [Certificate] { [root] + (previousRoot.map { [$0] } ?? []) }

    /// The intermediate and, during a rotation, the previous one, by serial, as PEM.
    public func intermediates() throws -> [String: Data] {
        var result: [String: Data] = [:]
        for certificate in [intermediate, try? Self.readCertificate(directory.file(CADirectory.previousIntermediate))].compactMap({ $0 })
        where FileManager.default.fileExists(atPath: directory.file(CADirectory.intermediateCertificate)) {
            result[certificate.serial.hex] = try certificate.pemEncoded()
        }
        return result
    }

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

    /// Decrypts the issuing key (the one scrypt of a run) and checks it belongs to the issuing certificate.
    public func signer(passphrase: () throws -> Passphrase) throws -> Signer {
        try signer(keyFile: issuingKeyFile, certificate: issuingCertificate, passphrase: passphrase)
    }

    /// The root's own signer, for what only the root signs (a rotation's cross-certificate).
    public func rootSigner(passphrase: () throws -> Passphrase) throws -> Signer {
        try signer(keyFile: directory.file(CADirectory.rootKey), certificate: root, passphrase: passphrase)
    }

    func signer(keyFile path: String, certificate: Certificate, passphrase: () throws -> Passphrase) throws -> Signer {
        let encrypted = (FileManager.default.contents(atPath: path).flatMap { try? PEMBlock.all(in: $0).first?.label }) == "ENCRYPTED PRIVATE KEY"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ChpkiError.input(file: path, field: nil, "cannot read the CA key")
        }
        let key: PrivateKey
        do {
            key = try PrivateKey(pem: data, passphrase: encrypted ? try passphrase() : nil)
        } catch let error as OpenSSLError {
            throw ChpkiError.input(file: path, field: "passphrase", error.isBadDecrypt || encrypted
                ? "the passphrase does not open the CA key" : "cannot read the CA key: \(error)")
        }
        guard key.matches(certificate) else {
            throw ChpkiError.input(file: path, field: nil, "this key does not belong to \(Path.name(of: path).replacingOccurrences(of: ".key", with: ".pem"))")
        }
        return Signer(certificate: certificate, key: key)
    }

    /// Rewrites index.txt (and its .attr) from the database, atomically.
    public func writeIndex(now: Date) throws {
        let records = try database.indexEntries()
        try AtomicFile.write(Data(OpenSSLIndex.render(records, now: now).utf8), to: directory.file(OpenSSLIndex.fileName))
        try AtomicFile.write(Data(OpenSSLIndex.attributes.utf8), to: directory.file(OpenSSLIndex.attributesFileName))
    }
}
