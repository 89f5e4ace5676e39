import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Creates the offline root CA (SPEC §6): everything is built in memory first, then written into a
/// staging directory inside the CA directory under the directory lock, then renamed into place with
/// `ca.db` last. A refusal or failure leaves the directory exactly as it was.
public enum CAInitializer {
    public struct Request: Sendable {
        public var directory: CADirectory
        public var subject: DistinguishedName
        public var keyType: KeyType
        public var validity: Period
        public var nameConstraints: NameConstraints?
        public var intermediate: Bool
        /// The operations passphrase (intermediate, leaf-key data key); nil stores the keys
        /// unencrypted (only with an explicit `--no-passphrase`).
        public var passphrase: Passphrase?
        /// The root passphrase (SPEC §6); nil wraps the root under `passphrase` (a one-passphrase CA).
        public var rootPassphrase: Passphrase?
        public var protection: KeyProtection
        public var now: Date

        public init(directory: CADirectory, subject: DistinguishedName, keyType: KeyType, validity: Period,
                    nameConstraints: NameConstraints?, intermediate: Bool, passphrase: Passphrase?,
                    rootPassphrase: Passphrase? = nil, protection: KeyProtection = .scryptDefault, now: Date) {
            self.directory = directory
            self.subject = subject
            self.keyType = keyType
            self.validity = validity
            self.nameConstraints = nameConstraints
            self.intermediate = intermediate
            self.passphrase = passphrase
            self.rootPassphrase = rootPassphrase
            self.protection = protection
            self.now = now
        }
    }

    public struct Result: Sendable {
        public var root: Certificate
        public var intermediate: Certificate?
        public var keyEncrypted: Bool
        /// Whether the root key is under its own passphrase.
        public var rootKeyApart: Bool
        public var files: [String]
    }

    /// How far back a CA's notBefore is set, so nodes with a slow clock accept it at once.
    public static let backdating: TimeInterval = 3600

    public static func create(_ request: Request, waitingForLock: @escaping () -> Void = {}) throws -> Result {
        let directory = request.directory
        try checkTarget(directory)

        // Everything that can fail for a reason other than the file system happens before any write.
        let materials = try buildMaterials(request)

        let createdDirectory = try makeDirectoryIfMissing(directory.path)
        var staging: String?
        do {
            let lock = try DirectoryLock(directory: directory.path, waiting: waitingForLock)
            defer { withExtendedLifetime(lock) {} }
            // Checked again under the lock: a concurrent init-ca may have won the race.
            let existing = directory.existingAuthorityFiles()
            guard existing.isEmpty else { throw alreadyExists(directory, existing) }
            CAFiles.removeStaging(CAFiles.staleStaging(in: directory), in: directory)

            // The whole CA is one database file, written aside and renamed into place: that rename is
            // the commit. Killed before it, there is no CA (and the next init-ca removes the remains);
            // after it, the next command writes root.pem and the other files from ca.db.
            let stagingPath = directory.file(".ca.db.init-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))")
            staging = stagingPath
            let database = try CADatabase(path: stagingPath)
            try database.initialize(authorities: materials.authorities, crl: materials.crl, leafKeyWrap: materials.leafKeyWrap,
                                    now: request.now)
            if materials.rootKeyApart { try database.markRootKeyApart() }
            try database.close()
            try AtomicFile.syncFile(stagingPath)
            try FileOperations.rename(stagingPath, to: directory.file(CADatabase.fileName))
            staging = nil
            AtomicFile.syncDirectory(directory.path)
            FileOperations.setModeIgnoringErrors(directory.path, 0o700)
        } catch {
            if let staging { for suffix in ["", "-wal", "-shm", "-journal"] { FileOperations.removeFileIgnoringErrors(staging + suffix) } }
            if createdDirectory { FileOperations.removeEmptyDirectoryIgnoringErrors(directory.path) }
            if let failure = error as? POSIXFailure { throw ChpkiError.input(.caDirectoryUnusable, file: directory.path, field: nil, failure.message) }
            throw error
        }
        // The files are views of ca.db: the session writes them (as the recovery of any later command would).
        let session = try CASession.open(directory, access: .change, now: request.now, waiting: waitingForLock)
        withExtendedLifetime(session) {}
        return Result(root: materials.root, intermediate: materials.intermediate, keyEncrypted: request.passphrase != nil,
                      rootKeyApart: materials.rootKeyApart, files: materials.fileNames + [CADatabase.fileName])
    }

    // MARK: - Steps

    /// The CA directory may be missing (its parent must exist) or a directory without CA files.
    package static func checkTarget(_ directory: CADirectory) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw ChpkiError.input(.caDirectoryUnusable, file: directory.path, field: "--ca-dir", "exists and is not a directory")
            }
            let existing = directory.existingAuthorityFiles()
            guard existing.isEmpty else { throw alreadyExists(directory, existing) }
            guard access(directory.path, W_OK | X_OK) == 0 else {
                throw ChpkiError.input(.caDirectoryUnusable, file: directory.path, field: "--ca-dir", "the directory is not writable")
            }
        } else {
            let parentPath = Path.parent(of: directory.path)
            guard FileManager.default.fileExists(atPath: parentPath, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ChpkiError.input(.caDirectoryUnusable, file: directory.path, field: "--ca-dir", "its parent \(parentPath) does not exist or is not a directory")
            }
            guard access(parentPath, W_OK | X_OK) == 0 else {
                throw ChpkiError.input(.caDirectoryUnusable, file: directory.path, field: "--ca-dir", "cannot create it: \(parentPath) is not writable")
            }
        }
    }

    static func alreadyExists(_ directory: CADirectory, _ files: [String]) -> ChpkiError {
        ChpkiError.input(.caExists, file: directory.path, field: nil,
                         "a CA already exists here (\(files.joined(separator: ", "))); init-ca never overwrites one")
    }

    struct Materials {
        var root: Certificate
        var intermediate: Certificate?
        var authorities: [CADatabase.NewAuthority]
        var crl: CADatabase.SignedCRL
        var leafKeyWrap: LeafKeyVault.Wrap?
        var fileNames: [String]
        var rootKeyApart: Bool
    }

    static func buildMaterials(_ request: Request) throws -> Materials {
        let notBefore = request.now.addingTimeInterval(-backdating)
        let rootNotAfter = request.validity.after(request.now)
        // The root is apart only when it has its own passphrase and an intermediate signs the leaves.
        let rootKeyApart = request.passphrase != nil && request.rootPassphrase != nil && request.intermediate
        let rootKey = try PrivateKey.generate(request.keyType)
        let rootTemplate = CertificateTemplate(
            subject: request.subject, serial: try SerialNumber.random(), notBefore: notBefore, notAfter: rootNotAfter,
            certificateAuthority: .init(pathLength: nil), keyUsage: [.keyCertSign, .cRLSign],
            // The constraints sit on the CA that signs leaves: on the intermediate when there is one, so
            // growth widens them with a new intermediate and never touches the trust anchor (SPEC §7).
            nameConstraints: request.intermediate ? nil : request.nameConstraints)
        let root = try rootTemplate.sign(publicKeyOf: rootKey, by: Signer(certificate: nil, key: rootKey))
        var authorities = [CADatabase.NewAuthority(
            certificate: root, kind: .root, issuerSerial: nil,
            keyPEM: try AuthorityKey.protect(rootKey, passphrase: rootKeyApart ? request.rootPassphrase : request.passphrase,
                                             protection: request.protection), role: .current)]
        var fileNames = [CADirectory.rootKey, CADirectory.rootCertificate]

        // Leaf keys are sealed under the passphrase; a --no-passphrase CA keeps them in clear, as its CA key.
        let vault = try request.passphrase.map { try LeafKeyVault.create(passphrase: $0) }
        var intermediate: Certificate?
        var crlSigner = Signer(certificate: root, key: rootKey)
        if request.intermediate {
            let (key, certificate) = try IssuingIntermediate.sign(subject: IssuingIntermediate.subject(below: request.subject), now: request.now,
                                                                  constraints: request.nameConstraints, by: crlSigner)
            authorities.append(.init(certificate: certificate, kind: .intermediate, issuerSerial: root.serial,
                                     keyPEM: try AuthorityKey.protect(key, passphrase: request.passphrase, protection: request.protection),
                                     sealedKey: try AuthorityKey.sealedCopy(of: key, serial: certificate.serial, vault: vault?.0),
                                     role: .current))
            fileNames += [CADirectory.intermediateKey, CADirectory.intermediateCertificate]
            intermediate = certificate
            crlSigner = Signer(certificate: certificate, key: key)
        }

        let crl = try CertificateRevocationList.sign(
            entries: [], number: 1, thisUpdate: notBefore, nextUpdate: CRLPolicy.nextUpdate(after: request.now),
            issuer: crlSigner.certificate!, key: crlSigner.key)
        fileNames += [CADirectory.crl, OpenSSLIndex.fileName, OpenSSLIndex.attributesFileName]
        return Materials(root: root, intermediate: intermediate, authorities: authorities,
                         crl: .init(number: 1, pem: try crl.pemEncoded()), leafKeyWrap: vault?.1, fileNames: fileNames,
                         rootKeyApart: rootKeyApart)
    }

    /// Creates the CA directory (0700) when missing; true if this call created it.
    static func makeDirectoryIfMissing(_ path: String) throws -> Bool {
        do { return try FileOperations.createDirectory(path, mode: 0o700) } catch let failure as POSIXFailure {
            throw ChpkiError.input(.caDirectoryUnusable, file: path, field: "--ca-dir", failure.message)
        }
    }
}

/// How long a CRL is valid before it must be re-signed.
public enum CRLPolicy {
    public static let validity = Period(amount: 30, unit: .days)

    public static func nextUpdate(after now: Date) -> Date { validity.after(now) }
}
