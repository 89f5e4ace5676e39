import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `chpki rotate-ca`: a new root (and intermediate) beside the old one, a cross-certificate of the
/// new root by the old, and a trust bundle of both, so old and new leaves are trusted during the
/// overlap; `--finish` retires the old root once no live leaf depends on it.
public enum CARotation {
    public struct Started: Sendable {
        public var root: Certificate
        public var crossSigned: Certificate
        public var intermediate: Certificate?
    }

    public static func start(_ authority: CertificateAuthority, inventory: Inventory?, passphrase: () throws -> Passphrase,
                             now: Date) throws -> Started {
        let directory = authority.directory
        guard authority.previousRoot == nil else {
            throw ChpkiError.input(file: directory.file(CADirectory.previousRoot), field: nil,
                                   "a rotation is already under way: re-issue the leaves ('chpki issue', 'chpki renew'), then 'chpki rotate-ca --finish'")
        }
        var cached: Passphrase?
        let once = { () throws -> Passphrase in
            if let cached { return cached }
            let value = try passphrase()
            cached = value
            return value
        }
        let old = try authority.rootSigner(passphrase: once)
        let rootKeyEncrypted = (FileManager.default.contents(atPath: directory.file(CADirectory.rootKey))
            .flatMap { try? PEMBlock.all(in: $0).first?.label }) == "ENCRYPTED PRIVATE KEY"
        let keyType = inventory?.ca.key ?? authority.root.keyType ?? .ecP384
        let key = try PrivateKey.generate(keyType)
        let lifetime = authority.root.notAfter.timeIntervalSince(authority.root.notBefore)
        let notBefore = now.addingTimeInterval(-CAInitializer.backdating)
        let notAfter = inventory?.ca.validity?.after(now) ?? now.addingTimeInterval(lifetime)
        let constraints = inventory.map(NameConstraintsPolicy.constraints(for:)) ?? authority.root.nameConstraints
        let subject = nextGeneration(of: authority.root.subject)
        let rootTemplate = CertificateTemplate(subject: subject, serial: try .random(), notBefore: notBefore, notAfter: notAfter,
                                               certificateAuthority: .init(), keyUsage: [.keyCertSign, .cRLSign], nameConstraints: constraints)
        let root = try rootTemplate.sign(publicKeyOf: key, by: Signer(certificate: nil, key: key))
        // The same subject and key, vouched for by the old root: clients that trust only the old root
        // can still build a path to leaves of the new one.
        var crossTemplate = rootTemplate
        crossTemplate.serial = try .random()
        crossTemplate.notAfter = min(notAfter, authority.root.notAfter)
        let crossSigned = try crossTemplate.sign(publicKeyOf: key, by: old)

        var files: [(String, Data)] = [
            (CADirectory.rootKey, try protect(key, encrypted: rootKeyEncrypted, passphrase: once)),
            (CADirectory.rootCertificate, try root.pemEncoded()),
            (CADirectory.crossSigned, try crossSigned.pemEncoded()),
            (CADirectory.trustBundle, try root.pemEncoded() + authority.root.pemEncoded()),
        ]
        var intermediate: Certificate?
        if let oldIntermediate = authority.intermediate {
            let intermediateKey = try PrivateKey.generate(keyType)
            let template = CertificateTemplate(
                subject: nextGeneration(of: oldIntermediate.subject), serial: try .random(), notBefore: notBefore,
                notAfter: min(CAInitializer.intermediateValidity.after(now), notAfter), certificateAuthority: .init(pathLength: 0),
                keyUsage: [.keyCertSign, .cRLSign])
            let certificate = try template.sign(publicKeyOf: intermediateKey, by: Signer(certificate: root, key: key))
            files.append((CADirectory.intermediateKey, try protect(intermediateKey, encrypted: rootKeyEncrypted, passphrase: once)))
            files.append((CADirectory.intermediateCertificate, try certificate.pemEncoded()))
            intermediate = certificate
        }

        // Stage everything, move the old CA aside, then move the new one in; the database last.
        for (name, data) in files { try AtomicFile.write(data, to: directory.file(name + ".new")) }
        var moves = [(CADirectory.rootCertificate, CADirectory.previousRoot), (CADirectory.rootKey, CADirectory.previousRootKey)]
        if authority.intermediate != nil {
            moves += [(CADirectory.intermediateCertificate, CADirectory.previousIntermediate),
                      (CADirectory.intermediateKey, CADirectory.previousIntermediateKey)]
        }
        for (from, to) in moves { try move(directory.file(from), directory.file(to)) }
        for (name, _) in files { try move(directory.file(name + ".new"), directory.file(name)) }
        AtomicFile.syncDirectory(directory.path)
        try authority.database.change { db in
            var record = try CertificateRecord(certificate: root, kind: .root, issuerSerial: nil, createdAt: now)
            try record.insert(db)
            if let intermediate {
                var child = try CertificateRecord(certificate: intermediate, kind: .intermediate, issuerSerial: root.serial.hex, createdAt: now)
                try child.insert(db)
            }
            try CADatabase.setMeta(db, "rotation_started_at", RFC3339.format(now))
        }
        return Started(root: root, crossSigned: crossSigned, intermediate: intermediate)
    }

    /// Retires the previous root; refuses while a valid, unexpired leaf was issued by the old CA.
    public static func finish(_ authority: CertificateAuthority, now: Date) throws -> Int {
        let directory = authority.directory
        guard let previous = authority.previousRoot else {
            throw ChpkiError.input(file: directory.path, field: "--finish", "no rotation is under way (there is no previous-root.pem)")
        }
        let previousIntermediate = try? CertificateAuthority.readCertificate(directory.file(CADirectory.previousIntermediate))
        let oldIssuers = Set([previous.serial.hex] + (previousIntermediate.map { [$0.serial.hex] } ?? []))
        let live = try authority.database.validLeaves().filter { oldIssuers.contains($0.issuerSerial ?? "") && $0.notAfter > now }
        if let first = live.first {
            throw ChpkiError.input(file: directory.path, field: "--finish",
                "\(live.count) valid certificate(s) still chain only to the old root (first: \(first.service ?? "") \(first.name ?? first.subject)); run 'chpki issue' or 'chpki renew' first")
        }
        let retired = directory.file(CADirectory.retired)
        guard mkdir(retired, 0o700) == 0 || errno == EEXIST else { throw POSIXFailure.last("cannot create \(retired)") }
        let stamp = "\(previous.serial.hex.prefix(12))"
        for name in [CADirectory.previousRoot, CADirectory.previousRootKey, CADirectory.previousIntermediate,
                     CADirectory.previousIntermediateKey, CADirectory.crossSigned]
        where FileManager.default.fileExists(atPath: directory.file(name)) {
            try move(directory.file(name), Path.join(retired, "\(stamp)-\(name)"))
        }
        try AtomicFile.write(try authority.root.pemEncoded(), to: directory.file(CADirectory.trustBundle))
        try authority.database.change { db in
            try db.execute(sql: "UPDATE certificates SET status = 'superseded' WHERE serial IN (\(oldIssuers.map { "'\($0)'" }.joined(separator: ",")))")
            try db.execute(sql: "DELETE FROM meta WHERE key = 'rotation_started_at'")
        }
        return oldIssuers.count
    }

    /// `CN=Cinc Root CA` -> `CN=Cinc Root CA G2`, `... G2` -> `... G3`.
    static func nextGeneration(of name: DistinguishedName) -> DistinguishedName {
        var name = name
        guard let index = name.attributes.lastIndex(where: { $0.type == "CN" }) else { return name }
        let value = name.attributes[index].value
        if let range = value.range(of: #" G(\d+)$"#, options: .regularExpression), let number = Int(value[range].dropFirst(2)) {
            name.attributes[index].value = value.replacingCharacters(in: range, with: " G\(number + 1)")
        } else {
            name.attributes[index].value = String(value.prefix(61)) + " G2"
        }
        return name
    }

    static func protect(_ key: PrivateKey, encrypted: Bool, passphrase: () throws -> Passphrase) throws -> Data {
        encrypted ? try key.encryptedPKCS8PEM(passphrase: try passphrase()) : try key.pkcs8PEM()
    }

    static func move(_ from: String, _ to: String) throws {
        guard rename(from, to) == 0 else { throw POSIXFailure.last("cannot move \(from) to \(to)") }
    }
}
