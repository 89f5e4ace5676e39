import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// BatchIssuer: a batch signed on several workers comes back in the order it went in, whatever the
/// number of workers and however slow each key type is; each certificate is the item's (names,
/// usages, key type, lifetime capped at the issuer's), signed by the issuer and with its own key
/// or the kept one; and a failure anywhere in the batch fails the whole batch (no partial result).
@Suite("Batch issuer")
struct BatchIssuerTests {
    typealias S = CATestSupport

    struct Issuer {
        var root: Certificate
        var certificate: Certificate
        var key: PrivateKey
        var signer: Signer { Signer(certificate: certificate, key: key) }
    }

    /// An in-memory root and intermediate (no files): what the session would hand BatchIssuer.
    static func issuer(lifetime: TimeInterval = 400 * 86_400) throws -> Issuer {
        let now = Date()
        let rootKey = try PrivateKey.generate(.ecP256)
        let root = try CertificateTemplate(subject: DistinguishedName([.init("CN", "Batch Root")]), serial: try .random(),
                                           notBefore: now.addingTimeInterval(-3600), notAfter: now.addingTimeInterval(lifetime + 86_400),
                                           certificateAuthority: .init(pathLength: nil), keyUsage: [.keyCertSign, .cRLSign])
            .sign(publicKeyOf: rootKey, by: Signer(certificate: nil, key: rootKey))
        let key = try PrivateKey.generate(.ecP256)
        let intermediate = try CertificateTemplate(subject: DistinguishedName([.init("CN", "Batch Intermediate")]), serial: try .random(),
                                                   notBefore: now.addingTimeInterval(-3600), notAfter: now.addingTimeInterval(lifetime),
                                                   certificateAuthority: .init(pathLength: 0), keyUsage: [.keyCertSign, .cRLSign])
            .sign(publicKeyOf: key, by: Signer(certificate: root, key: rootKey))
        return Issuer(root: root, certificate: intermediate, key: key)
    }

    static func profile(_ index: Int, keyType: KeyType = .ecP256, validity: Period = Period(amount: 90, unit: .days),
                        eku: [ExtendedKeyUsage] = [.serverAuth], extraSANs: [GeneralName] = []) -> CertificateProfile {
        let host = "node-\(index).example.com"
        return CertificateProfile(
            identity: CertificateIdentity(kind: .server, host: host, service: "etcd", name: host),
            subject: DistinguishedName([.init("O", "Batch"), .init("CN", host)]),
            subjectAlternativeNames: [.dns(host), .ip([10, 0, UInt8(index / 256), UInt8(index % 256)])] + extraSANs,
            extendedKeyUsage: eku, keyType: keyType, validity: validity, renewBefore: Period(amount: 30, unit: .days))
    }

    static func item(_ profile: CertificateProfile, previous: IssuedCertificate? = nil, keepsKey: Bool = false) -> IssuancePlan.Item {
        IssuancePlan.Item(profile: profile, action: previous == nil ? .issued : .renewed, reason: "test", previous: previous, keepsKey: keepsKey)
    }

    /// A stand-in for the valid certificate an item replaces (only its serial matters to BatchIssuer).
    static func previous(_ profile: CertificateProfile) throws -> IssuedCertificate {
        IssuedCertificate(serial: try .random(), kind: .server, host: profile.identity.host, service: profile.identity.service,
                          name: profile.identity.name, subject: profile.subject.rfc4514, subjectOneLine: "", subjectAlternativeNames: [],
                          profile: profile.essentials, keyType: profile.keyType, issuerSerial: nil, notBefore: Date(), notAfter: Date(),
                          status: .valid, revocation: nil, supersededBy: nil, authorityRole: nil, certificatePEM: "")
    }

    static func sign(_ items: [IssuancePlan.Item], issuer: Issuer, previousKeys: [SerialNumber: SecretBytes] = [:],
                     workers: Int = 4, now: Date = Date()) throws -> [BatchIssuer.Issued] {
        try BatchIssuer.sign(items, signer: issuer.signer, issuerNotAfter: issuer.certificate.notAfter, previousKeys: previousKeys,
                             now: now, workers: workers, finish: { $0 })
    }

    static func publicKey(of pem: SecretBytes) throws -> Data {
        try pem.withBytes { try PrivateKey(pem: Data($0), passphrase: nil).publicKeyDER() }
    }

    // MARK: - ordering

    @Test("results come back in the items' order, for any number of workers", arguments: [1, 2, 3, 4, 7, 64])
    func order(workers: Int) throws {
        let issuer = try Self.issuer()
        // mixed key types: RSA is far slower than EC, so a worker-ordered result would show
        let keyTypes: [KeyType] = [.rsa2048, .ecP256, .ed25519, .ecP384]
        let profiles = (0..<12).map { Self.profile($0, keyType: keyTypes[$0 % keyTypes.count]) }
        let issued = try Self.sign(profiles.map { Self.item($0) }, issuer: issuer, workers: workers)
        #expect(issued.count == profiles.count)
        for (index, result) in issued.enumerated() {
            #expect(result.item.profile == profiles[index], "slot \(index)")
            #expect(result.signed.subject == profiles[index].subject, "slot \(index)")
            #expect(result.signed.subjectAlternativeNames == profiles[index].subjectAlternativeNames, "slot \(index)")
        }
    }

    @Test("a large batch keeps its order and gives every certificate its own serial and key")
    func largeBatch() throws {
        let issuer = try Self.issuer()
        let profiles = (0..<300).map { Self.profile($0) }
        let issued = try Self.sign(profiles.map { Self.item($0) }, issuer: issuer, workers: 4)
        #expect(issued.map(\.item.profile.identity) == profiles.map(\.identity))
        #expect(Set(issued.map(\.signed.serial)).count == 300)
        #expect(Set(try issued.map { try Self.publicKey(of: $0.key) }).count == 300)
    }

    @Test("an empty batch signs nothing")
    func empty() throws {
        #expect(try Self.sign([], issuer: try Self.issuer()).isEmpty)
    }

    @Test("zero or negative workers still sign (at least one worker)", arguments: [0, -3])
    func atLeastOneWorker(workers: Int) throws {
        let issued = try Self.sign([Self.item(Self.profile(1)), Self.item(Self.profile(2))], issuer: try Self.issuer(), workers: workers)
        #expect(issued.map(\.item.profile.identity.name) == ["node-1.example.com", "node-2.example.com"])
    }

    // MARK: - what each certificate is

    @Test("each certificate is signed by the issuer and verifies with openssl through the chain")
    func signedByIssuer() throws {
        let issuer = try Self.issuer()
        let issued = try Self.sign((0..<4).map { Self.item(Self.profile($0)) }, issuer: issuer)
        let work = try S.temporaryDirectory("batch")
        let root = try S.file(String(decoding: try issuer.root.pemEncoded(), as: UTF8.self), named: "root.pem", in: work)
        let intermediate = try S.file(String(decoding: try issuer.certificate.pemEncoded(), as: UTF8.self), named: "int.pem", in: work)
        for result in issued {
            let certificate = try Certificate(pem: Data(result.signed.pem.utf8))
            #expect(certificate.isSigned(by: issuer.certificate))
            #expect(certificate.issuer == issuer.certificate.subject)
            let leaf = try S.file(result.signed.pem, named: "\(result.signed.serial.hex).pem", in: work)
            #expect(try S.opensslVerifies(leaf: leaf, trusted: root, untrusted: intermediate, extra: ["-purpose", "sslserver"]))
        }
    }

    @Test("the key handed back is the certificate's key, unencrypted PKCS#8")
    func keyMatches() throws {
        let issued = try Self.sign([Self.item(Self.profile(1, keyType: .ecP384)), Self.item(Self.profile(2, keyType: .rsa2048))],
                                   issuer: try Self.issuer())
        for result in issued {
            let certificate = try Certificate(pem: Data(result.signed.pem.utf8))
            #expect(try certificate.publicKeyDER() == Self.publicKey(of: result.key))
            #expect(result.key.withBytes { String(decoding: $0, as: UTF8.self) }.hasPrefix("-----BEGIN PRIVATE KEY-----"))
            #expect(certificate.keyType == result.item.profile.keyType)
        }
    }

    @Test("usages follow the profile: server, client, both; RSA adds keyEncipherment")
    func usages() throws {
        let profiles = [Self.profile(1, eku: [.serverAuth]), Self.profile(2, eku: [.clientAuth]),
                        Self.profile(3, eku: [.serverAuth, .clientAuth]), Self.profile(4, keyType: .rsa2048)]
        let issued = try Self.sign(profiles.map { Self.item($0) }, issuer: try Self.issuer())
        let certificates = try issued.map { try Certificate(pem: Data($0.signed.pem.utf8)) }
        #expect(certificates[0].extendedKeyUsageNames.count == 1)
        #expect(certificates[2].extendedKeyUsageNames.count == 2)
        #expect(certificates[0].extendedKeyUsageNames != certificates[1].extendedKeyUsageNames)
        #expect(certificates[3].keyUsage.contains(.keyEncipherment))
        #expect(!certificates[0].keyUsage.contains(.keyEncipherment))
        #expect(certificates.allSatisfy { $0.keyUsage.contains(.digitalSignature) && !$0.isCA })
    }

    @Test("the lifetime is the profile's, backdated an hour, and never past the issuer's notAfter")
    func lifetime() throws {
        let now = Date()
        let issuer = try Self.issuer(lifetime: 30 * 86_400)
        let issued = try Self.sign([Self.item(Self.profile(1, validity: Period(amount: 7, unit: .days))),
                                    Self.item(Self.profile(2, validity: Period(amount: 397, unit: .days)))], issuer: issuer, now: now)
        #expect(abs(issued[0].signed.notBefore.timeIntervalSince(now.addingTimeInterval(-CertificateProfile.backdating))) < 2)
        #expect(abs(issued[0].signed.notAfter.timeIntervalSince(now.addingTimeInterval(7 * 86_400))) < 2)
        #expect(abs(issued[1].signed.notAfter.timeIntervalSince(issuer.certificate.notAfter)) < 2)
    }

    // MARK: - kept keys

    @Test("an item that keeps its key gets a certificate for the previous key, byte for byte the same PEM")
    func keptKey() throws {
        let issuer = try Self.issuer()
        let profile = Self.profile(1)
        let first = try Self.sign([Self.item(profile)], issuer: issuer)[0]
        let previous = try Self.previous(profile)
        let renewed = try Self.sign([Self.item(profile, previous: previous, keepsKey: true)], issuer: issuer,
                                    previousKeys: [previous.serial: first.key])[0]
        #expect(renewed.key == first.key)
        #expect(try Certificate(pem: Data(renewed.signed.pem.utf8)).publicKeyDER() == Self.publicKey(of: first.key))
        #expect(renewed.signed.serial != first.signed.serial)
    }

    @Test("an item that does not keep its key gets a new one even when the previous key is at hand")
    func newKeyWhenNotKept() throws {
        let issuer = try Self.issuer()
        let profile = Self.profile(1)
        let first = try Self.sign([Self.item(profile)], issuer: issuer)[0]
        let previous = try Self.previous(profile)
        let reissued = try Self.sign([Self.item(profile, previous: previous, keepsKey: false)], issuer: issuer,
                                     previousKeys: [previous.serial: first.key])[0]
        #expect(try Self.publicKey(of: reissued.key) != Self.publicKey(of: first.key))
    }

    @Test("a kept key that is not at hand (none stored) is replaced by a new one")
    func keptKeyMissing() throws {
        let profile = Self.profile(1)
        let issued = try Self.sign([Self.item(profile, previous: try Self.previous(profile), keepsKey: true)], issuer: try Self.issuer())
        #expect(issued.count == 1)
        #expect(try Certificate(pem: Data(issued[0].signed.pem.utf8)).publicKeyDER() == Self.publicKey(of: issued[0].key))
    }

    @Test("kept and new keys mixed in one batch each go to their own item")
    func mixedKeptKeys() throws {
        let issuer = try Self.issuer()
        let profiles = (0..<8).map { Self.profile($0) }
        let firsts = try Self.sign(profiles.map { Self.item($0) }, issuer: issuer)
        var keys: [SerialNumber: SecretBytes] = [:]
        var items: [IssuancePlan.Item] = []
        for (index, profile) in profiles.enumerated() {
            let previous = try Self.previous(profile)
            keys[previous.serial] = firsts[index].key
            items.append(Self.item(profile, previous: previous, keepsKey: index.isMultiple(of: 2)))
        }
        let second = try Self.sign(items, issuer: issuer, previousKeys: keys, workers: 3)
        for index in profiles.indices {
            let same = try Self.publicKey(of: second[index].key) == Self.publicKey(of: firsts[index].key)
            #expect(same == index.isMultiple(of: 2), "item \(index)")
        }
    }

    // MARK: - failure mid-batch

    static let garbageKey = SecretBytes(Array("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".utf8))

    @Test("one bad item in the middle fails the whole batch: no partial result", arguments: [1, 2, 4])
    func failureMidBatch(workers: Int) throws {
        let issuer = try Self.issuer()
        var items = (0..<10).map { Self.item(Self.profile($0)) }
        let badProfile = Self.profile(5)
        let previous = try Self.previous(badProfile)
        items[5] = Self.item(badProfile, previous: previous, keepsKey: true)
        #expect(throws: (any Error).self) {
            _ = try Self.sign(items, issuer: issuer, previousKeys: [previous.serial: Self.garbageKey], workers: workers)
        }
    }

    @Test("a failure on the first or the last item fails the batch too", arguments: [0, 9])
    func failureAtEnds(position: Int) throws {
        let issuer = try Self.issuer()
        var items = (0..<10).map { Self.item(Self.profile($0)) }
        let previous = try Self.previous(items[position].profile)
        items[position] = Self.item(items[position].profile, previous: previous, keepsKey: true)
        #expect(throws: (any Error).self) {
            _ = try Self.sign(items, issuer: issuer, previousKeys: [previous.serial: Self.garbageKey], workers: 2)
        }
    }

    @Test("a signer whose key does not fit its certificate still signs nothing wrong: openssl rejects the chain")
    func mismatchedSigner() throws {
        let issuer = try Self.issuer()
        let other = try PrivateKey.generate(.ecP256)
        let wrong = Issuer(root: issuer.root, certificate: issuer.certificate, key: other)
        let issued = try? Self.sign([Self.item(Self.profile(1))], issuer: wrong)
        guard let issued else { return }  // refusing is fine too
        let certificate = try Certificate(pem: Data(issued[0].signed.pem.utf8))
        #expect(!certificate.isSigned(by: issuer.certificate))
    }

    @Test("after a failed batch the same items sign fine (no state kept between batches)")
    func recoversAfterFailure() throws {
        let issuer = try Self.issuer()
        let profiles = (0..<6).map { Self.profile($0) }
        let previous = try Self.previous(profiles[3])
        var items = profiles.map { Self.item($0) }
        items[3] = Self.item(profiles[3], previous: previous, keepsKey: true)
        #expect(throws: (any Error).self) { _ = try Self.sign(items, issuer: issuer, previousKeys: [previous.serial: Self.garbageKey]) }
        let issued = try Self.sign(profiles.map { Self.item($0) }, issuer: issuer)
        #expect(issued.map(\.item.profile) == profiles)
    }

    // MARK: - through the session: a failed batch records nothing

    @Test("through CASession, a batch that fails mid-way records nothing in ca.db or index.txt")
    func sessionRecordsNothingOnFailure() throws {
        let directory = try S.newCA()
        let inventory = try S.inventory()
        let index = S.read(directory.file(OpenSSLIndex.fileName))
        try S.withSession(directory) { session throws in
            var items = try S.plan(session, inventory).work
            #expect(items.count >= 3)
            let previous = try Self.previous(items[1].profile)
            items[1].previous = previous
            items[1].keepsKey = true
            // the session looks kept keys up in ca.db: a serial it does not have is simply a new key,
            // so break the item another way: a SAN OpenSSL cannot encode
            items[1].profile.subjectAlternativeNames.append(.other("not a general name"))
            #expect(throws: (any Error).self) { _ = try session.issue(items) }
            #expect(try session.validLeaves().isEmpty)
        }
        #expect(S.read(directory.file(OpenSSLIndex.fileName)) == index)
    }
}
