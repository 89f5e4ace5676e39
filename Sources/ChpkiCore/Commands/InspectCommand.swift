import Foundation

/// `chpki inspect FILE`: a human (or `--json`) summary of each certificate, key or CRL in a file.
public enum InspectCommand {
    public struct Options: Sendable {
        public var file: String
        public var passphraseFile: String?

        public init(file: String, passphraseFile: String? = nil) {
            self.file = file
            self.passphraseFile = passphraseFile
        }
    }

    public struct CertificateItem: Encodable, Sendable {
        var type = "certificate"
        var subject: String
        var issuer: String
        var serial: String
        var notBefore: Date
        var notAfter: Date
        var sans: [String]
        var keyUsage: [String]
        var extendedKeyUsage: [String]
        var isCA: Bool
        @NullEncoded var pathLength: Int?
        var fingerprintSHA256: String
        var keyType: String
        var selfSigned: Bool
        var signatureAlgorithm: String
        @NullEncoded var nameConstraints: Constraints?

        struct Constraints: Encodable, Sendable {
            var permitted: [String]
            var excluded: [String]
        }

        enum CodingKeys: String, CodingKey {
            case type, subject, issuer, serial, sans
            case notBefore = "not_before", notAfter = "not_after", keyUsage = "key_usage"
            case extendedKeyUsage = "extended_key_usage", isCA = "is_ca", pathLength = "path_len"
            case fingerprintSHA256 = "fingerprint_sha256", keyType = "key_type", selfSigned = "self_signed"
            case signatureAlgorithm = "signature_algorithm", nameConstraints = "name_constraints"
        }

        public init(_ certificate: Certificate) {
            subject = certificate.subject.rfc4514
            issuer = certificate.issuer.rfc4514
            serial = certificate.serial.hex
            notBefore = certificate.notBefore
            notAfter = certificate.notAfter
            sans = certificate.subjectAlternativeNames.map(\.description)
            keyUsage = certificate.keyUsage.names
            extendedKeyUsage = certificate.extendedKeyUsageNames
            isCA = certificate.isCA
            pathLength = certificate.pathLength
            fingerprintSHA256 = certificate.fingerprintSHA256
            keyType = certificate.keyType?.rawValue ?? certificate.keyDescription
            selfSigned = certificate.isSelfSigned
            signatureAlgorithm = certificate.signatureAlgorithm
            nameConstraints = certificate.nameConstraints.map {
                Constraints(permitted: $0.permitted.map(\.description), excluded: $0.excluded.map(\.description))
            }
        }
    }

    struct KeyItem: Encodable {
        var type = "private_key"
        var format: String
        @NullEncoded var keyType: String?
        @NullEncoded var encryption: EncryptedKeyInfo?
        @NullEncoded var publicKeySHA256: String?

        enum CodingKeys: String, CodingKey {
            case type, format, encryption
            case keyType = "key_type", publicKeySHA256 = "public_key_sha256"
        }

    }

    struct RequestItem: Encodable {
        var type = "csr"
        var subject: String
        var sans: [String]
        var keyType: String
        var signatureValid: Bool

        enum CodingKeys: String, CodingKey {
            case type, subject, sans
            case keyType = "key_type", signatureValid = "signature_valid"
        }
    }

    struct CRLItem: Encodable {
        var type = "crl"
        var issuer: String
        var thisUpdate: Date
        @NullEncoded var nextUpdate: Date?
        var revoked: [String]

        enum CodingKeys: String, CodingKey {
            case type, issuer, revoked
            case thisUpdate = "this_update", nextUpdate = "next_update"
        }

    }

    enum Item: Encodable {
        case certificate(CertificateItem)
        case key(KeyItem)
        case crl(CRLItem)
        case request(RequestItem)
        case other(label: String)

        /// Each item is its own object, tagged by its "type" key.
        func encode(to encoder: Encoder) throws {
            switch self {
            case let .certificate(item): try item.encode(to: encoder)
            case let .key(item): try item.encode(to: encoder)
            case let .crl(item): try item.encode(to: encoder)
            case let .request(item): try item.encode(to: encoder)
            case let .other(label):
                var container = encoder.container(keyedBy: OtherKeys.self)
                try container.encode("other", forKey: .type)
                try container.encode(label, forKey: .label)
            }
        }

        enum OtherKeys: String, CodingKey { case type, label }
    }

    struct Report: Encodable {
        var file: String
        var items: [Item]
    }

    public static func run(_ options: Options, settings: Settings, reporter: Reporter) throws {
        let file = options.file
        let data = try InputFile.read(file, limit: ReadLimits.inspectInput, field: nil)
        let passphrase = { try options.passphraseFile.map { try PassphraseSource(file: $0, environment: settings.environment).existingPassphrase(purpose: file) } }
        let items = try items(in: data, file: file, passphrase: passphrase)
        try reporter.emit(Report(file: file, items: items))
        for (index, item) in items.enumerated() {
            if index > 0 { reporter.line() }
            describe(item, reporter: reporter)
        }
    }

    /// Every PEM block of `data` (or `data` as one DER certificate), parsed: what `inspect` reads
    /// from an untrusted file, in one place so the fuzzer (Fuzz/) calls exactly this.
    static func items(in data: Data, file: String, passphrase readPassphrase: () throws -> Passphrase?) throws -> [Item] {
        var blocks = try PEMBlock.all(in: data)
        if blocks.isEmpty, (try? Certificate(der: data)) != nil {
            blocks = [PEMBlock(label: "CERTIFICATE", der: data)]
        }
        guard !blocks.isEmpty else {
            throw ChpkiError.input(.inspectNothingFound, file: file, field: nil, "no PEM certificate, key, CSR or CRL found (nor a DER certificate)")
        }
        let passphrase = try readPassphrase()
        var items: [Item] = []
        for (index, block) in blocks.enumerated() {
            do {
                items.append(try item(for: block, passphrase: passphrase))
            } catch let error as ChpkiError {
                throw error
            } catch {
                throw ChpkiError.input(.inspectUnparsable, file: file, field: "PEM block \(index + 1) (\(block.label))", "\(error)")
            }
        }
        return items
    }

    static func item(for block: PEMBlock, passphrase: Passphrase?) throws -> Item {
        switch block.label {
        case "CERTIFICATE", "TRUSTED CERTIFICATE":
            return .certificate(CertificateItem(try Certificate(der: block.der)))
        case "X509 CRL":
            let crl = try CertificateRevocationList(pem: pemText(block))
            return .crl(CRLItem(issuer: crl.issuer.rfc4514, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate,
                                revoked: crl.revokedSerials.map(\.hex)))
        case "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST":
            let request = try CertificateRequest(der: block.der)
            return .request(RequestItem(subject: request.subject.rfc4514, sans: request.subjectAlternativeNames.map(\.description),
                                        keyType: request.keyType?.rawValue ?? request.keyDescription,
                                        signatureValid: request.isSignatureValid))
        case "ENCRYPTED PRIVATE KEY":
            let info = try EncryptedKeyInfo(der: block.der)
            var keyType: String?
            var fingerprint: String?
            if let passphrase {
                do {
                    let key = try PrivateKey(pem: pemText(block), passphrase: passphrase)
                    keyType = key.keyType?.rawValue ?? key.algorithmDescription
                    fingerprint = try Digest.sha256Hex(key.publicKeyDER())
                } catch let error as OpenSSLError where error.isBadDecrypt || error.reasons.isEmpty {
                    throw ChpkiError.input(.passphraseWrong, file: nil, field: "--passphrase-file", "the passphrase does not open this key")
                }
            }
            return .key(KeyItem(format: "pkcs8-encrypted", keyType: keyType, encryption: info, publicKeySHA256: fingerprint))
        case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
            let key = try PrivateKey(pem: pemText(block))
            let format = ["PRIVATE KEY": "pkcs8", "RSA PRIVATE KEY": "pkcs1", "EC PRIVATE KEY": "sec1"][block.label]!
            return .key(KeyItem(format: format, keyType: key.keyType?.rawValue ?? key.algorithmDescription,
                                encryption: nil, publicKeySHA256: try Digest.sha256Hex(key.publicKeyDER())))
        default:
            return .other(label: block.label)
        }
    }

    /// A single block back in PEM form, for the readers that take PEM.
    static func pemText(_ block: PEMBlock) -> Data {
        let body = block.der.base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return Data("-----BEGIN \(block.label)-----\n\(body)\n-----END \(block.label)-----\n".utf8)
    }

    static func describe(_ item: Item, reporter: Reporter) {
        switch item {
        case let .certificate(c):
            reporter.line("Certificate")
            reporter.line("  subject       \(c.subject)")
            reporter.line("  issuer        \(c.issuer)\(c.selfSigned ? " (self-signed)" : "")")
            reporter.line("  serial        \(c.serial)")
            reporter.line("  valid         \(RFC3339.format(c.notBefore)) to \(RFC3339.format(c.notAfter))")
            reporter.line("  key           \(c.keyType), signed with \(c.signatureAlgorithm)")
            reporter.line("  CA            \(c.isCA ? "yes" + (c.pathLength.map { ", path length \($0)" } ?? "") : "no")")
            if !c.sans.isEmpty { reporter.line("  SANs          \(c.sans.joined(separator: ", "))") }
            if !c.keyUsage.isEmpty { reporter.line("  key usage     \(c.keyUsage.joined(separator: ", "))") }
            if !c.extendedKeyUsage.isEmpty { reporter.line("  ext. usage    \(c.extendedKeyUsage.joined(separator: ", "))") }
            if let constraints = c.nameConstraints {
                reporter.line("  permitted     \(constraints.permitted.joined(separator: ", "))")
                if !constraints.excluded.isEmpty { reporter.line("  excluded      \(constraints.excluded.joined(separator: ", "))") }
            }
            reporter.line("  SHA-256       \(c.fingerprintSHA256)")
        case let .key(k):
            reporter.line("Private key")
            reporter.line("  format        \(k.format)")
            reporter.line("  type          \(k.keyType ?? "unknown until decrypted (pass --passphrase-file)")")
            if let encryption = k.encryption {
                var cost = ""
                if let n = encryption.scryptN { cost = " N=\(n) r=\(encryption.scryptR ?? 0) p=\(encryption.scryptP ?? 0)" }
                if let iterations = encryption.iterations { cost = " \(iterations) iterations, \(encryption.prf ?? "")" }
                reporter.line("  encryption    \(encryption.scheme) \(encryption.kdf ?? "")\(cost) \(encryption.cipher ?? "")")
            }
            if let fingerprint = k.publicKeySHA256 { reporter.line("  public SHA-256 \(fingerprint)") }
        case let .crl(c):
            reporter.line("CRL")
            reporter.line("  issuer        \(c.issuer)")
            reporter.line("  this update   \(RFC3339.format(c.thisUpdate))")
            if let next = c.nextUpdate { reporter.line("  next update   \(RFC3339.format(next))") }
            reporter.line("  revoked       \(c.revoked.isEmpty ? "none" : c.revoked.joined(separator: ", "))")
        case let .request(r):
            reporter.line("Certificate request")
            reporter.line("  subject       \(r.subject)")
            if !r.sans.isEmpty { reporter.line("  SANs          \(r.sans.joined(separator: ", "))") }
            reporter.line("  key           \(r.keyType)")
            reporter.line("  signature     \(r.signatureValid ? "valid" : "INVALID")")
        case let .other(label):
            reporter.line("\(label) (not inspected)")
        }
    }
}
