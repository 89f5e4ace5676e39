import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// The issuing intermediate (SPEC §7): the CA certificate below the root that signs every leaf.
/// init-ca, growth (`issue` past the name constraints) and rotate-ca each sign one; its key type,
/// lifetime, extensions and subject are decided here, once, so the three cannot drift apart.
public enum IssuingIntermediate {
    /// P-256 signs about 3x faster than P-384 (SPEC §3), and this key signs every leaf.
    public static let keyType = KeyType.ecP256
    /// At most this long, and never past the root.
    public static let validity = Period(amount: 5, unit: .years)

    /// The first intermediate below `root`: the root's subject with " Intermediate" after its CN.
    public static func subject(below root: DistinguishedName) -> DistinguishedName {
        var subject = root
        if let index = subject.attributes.lastIndex(where: { $0.type == "CN" }) {
            subject.attributes[index].value = String((subject.attributes[index].value + " Intermediate").prefix(64))
        }
        return subject
    }

    /// The template: a CA that signs leaves only (pathlen 0), constrained to `constraints`, backdated as
    /// every CA certificate is.
    public static func template(subject: DistinguishedName, now: Date, rootNotAfter: Date,
                                constraints: NameConstraints?) throws -> CertificateTemplate {
        CertificateTemplate(subject: subject, serial: try SerialNumber.random(), notBefore: now.addingTimeInterval(-CAInitializer.backdating),
                            notAfter: min(validity.after(now), rootNotAfter), certificateAuthority: .init(pathLength: 0),
                            keyUsage: [.keyCertSign, .cRLSign], nameConstraints: constraints)
    }

    /// A fresh key and its certificate signed by `root` (whose certificate is set).
    public static func sign(subject: DistinguishedName, now: Date, constraints: NameConstraints?,
                            by root: Signer) throws -> (key: PrivateKey, certificate: Certificate) {
        guard let rootCertificate = root.certificate else { throw ChpkiError(.internalBug, "internal: an intermediate needs its root's certificate") }
        let key = try PrivateKey.generate(keyType)
        let template = try template(subject: subject, now: now, rootNotAfter: rootCertificate.notAfter, constraints: constraints)
        return (key, try template.sign(publicKeyOf: key, by: root))
    }
}
