import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

@Suite("OpenSSL layer")
struct OpenSSLLayerTests {
    static let passphrase = try! Passphrase(bytes: Array("correct horse battery".utf8), source: "test")

    @Test("every key type generates, names itself and round-trips through PKCS#8", arguments: KeyType.allCases)
    func keyRoundTrip(type: KeyType) throws {
        let key = try PrivateKey.generate(type)
        #expect(key.keyType == type)
        let pem = try key.pkcs8PEM()
        #expect(String(decoding: pem, as: UTF8.self).hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let reread = try PrivateKey(pem: pem)
        #expect(try reread.publicKeyDER() == key.publicKeyDER())
    }

    @Test("traditional PKCS#1 and SEC1 keys are read too")
    func traditionalKeys() throws {
        for type in [KeyType.rsa2048, .ecP256] {
            let key = try PrivateKey.generate(type)
            let pem = String(decoding: try key.traditionalPEM(), as: UTF8.self)
            #expect(pem.hasPrefix(type.isRSA ? "-----BEGIN RSA PRIVATE KEY-----" : "-----BEGIN EC PRIVATE KEY-----"))
            #expect(try PrivateKey(pem: Data(pem.utf8)).keyType == type)
        }
    }

    @Test("encrypted PKCS#8 opens with the passphrase only, and records its KDF", arguments: [KeyProtection.scryptDefault, .pbkdf2Default])
    func encryptedKey(protection: KeyProtection) throws {
        let key = try PrivateKey.generate(.ecP256)
        let pem = try key.encryptedPKCS8PEM(passphrase: Self.passphrase, protection: protection)
        #expect(String(decoding: pem, as: UTF8.self).hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        #expect(try PrivateKey(pem: pem, passphrase: Self.passphrase).publicKeyDER() == key.publicKeyDER())
        let wrong = try Passphrase(bytes: Array("not the passphrase".utf8), source: "test")
        #expect(throws: OpenSSLError.self) { try PrivateKey(pem: pem, passphrase: wrong) }
        #expect(throws: OpenSSLError.self) { try PrivateKey(pem: pem) }
        let info = try EncryptedKeyInfo(der: try PEMBlock.all(in: pem)[0].der)
        #expect(info.scheme == "PBES2")
        #expect(info.cipher == "AES-256-CBC")
        switch protection {
        case let .scrypt(n, r, p):
            #expect(info.kdf == "scrypt")
            #expect(info.scryptN == Int(n) && info.scryptR == Int(r) && info.scryptP == Int(p))
        case let .pbkdf2(iterations):
            #expect(info.kdf == "pbkdf2")
            #expect(info.iterations == Int(iterations))
            #expect(info.prf == "hmacWithSHA256")
        }
    }

    @Test("a signed leaf carries exactly the template's names, usages and validity")
    func leafCertificate() throws {
        let caKey = try PrivateKey.generate(.ecP384)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let root = try CertificateTemplate(
            subject: DistinguishedName([.init("C", "US"), .init("CN", "Test Root")]), serial: .random(),
            notBefore: now, notAfter: now.addingTimeInterval(86400 * 365), certificateAuthority: .init(),
            keyUsage: [.keyCertSign, .cRLSign]
        ).sign(publicKeyOf: caKey, by: Signer(certificate: nil, key: caKey))
        let leafKey = try PrivateKey.generate(.rsa2048)
        let sans: [GeneralName] = [.dns("backend-1.example.com"), .dns("backend-1"), .ip([10, 0, 0, 1]),
                                   .ip([UInt8](repeating: 0, count: 15) + [1])]
        let leaf = try CertificateTemplate(
            subject: DistinguishedName([.init("C", "US"), .init("O", "Acme, Inc."), .init("CN", "backend-1.example.com")]),
            serial: .random(), notBefore: now, notAfter: now.addingTimeInterval(86400 * 30),
            keyUsage: [.digitalSignature, .keyEncipherment], extendedKeyUsage: [.serverAuth, .clientAuth],
            subjectAlternativeNames: sans
        ).sign(publicKeyOf: leafKey, by: Signer(certificate: root, key: caKey))

        #expect(leaf.subjectAlternativeNames == sans)
        #expect(leaf.subject.rfc4514 == "CN=backend-1.example.com,O=Acme\\, Inc.,C=US")
        #expect(leaf.subjectRFC2253 == leaf.subject.rfc4514)
        #expect(leaf.issuer == root.subject)
        #expect(leaf.keyUsage == [.digitalSignature, .keyEncipherment])
        #expect(leaf.extendedKeyUsageNames == ["serverAuth", "clientAuth"])
        #expect(!leaf.isCA)
        #expect(leaf.isCritical("basicConstraints") == true)
        #expect(leaf.isCritical("keyUsage") == true)
        #expect(leaf.authorityKeyIdentifier == root.subjectKeyIdentifier)
        #expect(leaf.subjectKeyIdentifier != nil)
        #expect(leaf.notBefore == now)
        #expect(leaf.keyType == .rsa2048)
        #expect(leaf.isSigned(by: root))
        #expect(!leaf.isSelfSigned)
        #expect(root.isSelfSigned)
        #expect(leafKey.matches(leaf))
        #expect(!caKey.matches(leaf))
        let reparsed = try Certificate(pem: try leaf.pemEncoded())
        #expect(reparsed.fingerprintSHA256 == leaf.fingerprintSHA256)
        #expect(try Certificate(der: leaf.derEncoded()).serial == leaf.serial)
    }

    @Test("a batch worker's certificate carries the subject key and the CA's signature", arguments: KeyType.allCases)
    func workerSigning(type: KeyType) throws {
        let caKey = try PrivateKey.generate(.ecP256)
        let root = try CertificateTemplate(
            subject: DistinguishedName([.init("CN", "Worker Root")]), serial: .random(), notBefore: Date(),
            notAfter: Date().addingTimeInterval(86400), certificateAuthority: .init(), keyUsage: [.keyCertSign, .cRLSign]
        ).sign(publicKeyOf: caKey, by: Signer(certificate: nil, key: caKey))
        let worker = try SigningWorker(signer: Signer(certificate: root, key: caKey))
        let leafKey = try worker.generateKey(type)
        let template = CertificateTemplate(subject: DistinguishedName([.init("CN", "leaf.example.com")]), serial: try .random(),
                                           notBefore: Date(), notAfter: Date().addingTimeInterval(3600), keyUsage: [.digitalSignature],
                                           extendedKeyUsage: [.serverAuth], subjectAlternativeNames: [.dns("leaf.example.com")])
        let signed = try worker.sign(template, publicKeyOf: leafKey)
        let leaf = try Certificate(pem: Data(signed.pem.utf8))
        #expect(leaf.keyType == type)
        #expect(try PrivateKey(pem: leafKey.pkcs8PEM()).matches(leaf))
        #expect(leaf.isSigned(by: root))
        #expect(leaf.serial == template.serial)
        #expect(signed.subjectOneLine == "/CN=leaf.example.com")
        #expect(leaf.authorityKeyIdentifier == root.subjectKeyIdentifier)
    }

    @Test("name constraints round-trip, networks included")
    func nameConstraints() throws {
        let key = try PrivateKey.generate(.ecP256)
        let constraints = NameConstraints(permitted: [.dns("example.com"), .network(containing: [10, 0, 0, 7], prefixLength: 24),
                                                      .network(containing: [0xfd] + [UInt8](repeating: 0, count: 14) + [9], prefixLength: 64)])
        let certificate = try CertificateTemplate(
            subject: DistinguishedName([.init("CN", "Constrained")]), serial: .random(), notBefore: Date(),
            notAfter: Date().addingTimeInterval(3600), certificateAuthority: .init(), keyUsage: [.keyCertSign],
            nameConstraints: constraints
        ).sign(publicKeyOf: key, by: Signer(certificate: nil, key: key))
        #expect(certificate.nameConstraints == constraints)
        #expect(certificate.isCritical("nameConstraints") == true)
        #expect(constraints.permitted.map(\.description) == ["DNS:example.com", "IP:10.0.0.0/24", "IP:fd00::/64"])
    }

    @Test("random serials are positive, 18 octets, and distinct")
    func serials() throws {
        let serials = try (0..<2000).map { _ in try SerialNumber.random() }
        #expect(Set(serials).count == serials.count)
        for serial in serials {
            #expect(serial.bytes.count == SerialNumber.length)
            #expect(serial.bytes[0] & 0x80 == 0 && serial.bytes[0] != 0)
        }
        #expect(SerialNumber(hex: "0a:BC")?.hex == "0ABC")
        #expect(SerialNumber(hex: "xyz") == nil)
    }

    @Test("a CRL lists its revocations and verifies under its issuer")
    func crl() throws {
        let key = try PrivateKey.generate(.ecP256)
        let issuer = try CertificateTemplate(
            subject: DistinguishedName([.init("CN", "CRL issuer")]), serial: .random(), notBefore: Date(),
            notAfter: Date().addingTimeInterval(86400), certificateAuthority: .init(), keyUsage: [.keyCertSign, .cRLSign]
        ).sign(publicKeyOf: key, by: Signer(certificate: nil, key: key))
        let revoked = try SerialNumber.random()
        let crl = try CertificateRevocationList.sign(entries: [.init(serial: revoked, revokedAt: Date(), reasonCode: 1)], number: 7,
                                                     thisUpdate: Date(), nextUpdate: Date().addingTimeInterval(3600), issuer: issuer, key: key)
        #expect(crl.revokedSerials == [revoked])
        #expect(crl.isSigned(by: issuer))
        #expect(try CertificateRevocationList(pem: crl.pemEncoded()).issuer == issuer.subject)
    }

    @Test("PEM blocks are split by OpenSSL, text around them ignored")
    func pemBlocks() throws {
        let key = try PrivateKey.generate(.ed25519)
        let text = "comment\n" + String(decoding: try key.pkcs8PEM(), as: UTF8.self) + "between\n" + String(decoding: try key.publicKeyPEM(), as: UTF8.self)
        let blocks = try PEMBlock.all(in: Data(text.utf8))
        #expect(blocks.map(\.label) == ["PRIVATE KEY", "PUBLIC KEY"])
        #expect(try PEMBlock.all(in: Data("no pem here".utf8)).isEmpty)
    }
}
