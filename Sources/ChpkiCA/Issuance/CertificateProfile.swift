import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Everything chpki decides about one leaf before it exists: who it is for, its names, usages, key
/// type and lifetime (docs/issuance.md).
public struct CertificateProfile: Sendable, Equatable {
    public var identity: CertificateIdentity
    public var subject: DistinguishedName
    public var subjectAlternativeNames: [GeneralName]
    public var extendedKeyUsage: [ExtendedKeyUsage]
    public var keyType: KeyType
    public var validity: Period
    public var renewBefore: Period

    package init(identity: CertificateIdentity, subject: DistinguishedName, subjectAlternativeNames: [GeneralName],
                 extendedKeyUsage: [ExtendedKeyUsage], keyType: KeyType, validity: Period, renewBefore: Period) {
        self.identity = identity
        self.subject = subject
        self.subjectAlternativeNames = subjectAlternativeNames
        self.extendedKeyUsage = extendedKeyUsage
        self.keyType = keyType
        self.validity = validity
        self.renewBefore = renewBefore
    }

    public var keyUsage: KeyUsage {
        keyType.isRSA ? [.digitalSignature, .keyEncipherment] : [.digitalSignature]
    }

    /// The parts of the profile that, when changed, make chpki reissue: stored with each certificate.
    public struct Essentials: Codable, Equatable, Sendable {
        public var subject: String
        public var sans: [String]
        public var eku: [String]
        public var key: String
    }

    public var essentials: Essentials {
        essentials(subjectText: subject.rfc4514, sanTexts: subjectAlternativeNames.map(\.description))
    }

    /// The same from the subject's and SANs' texts already rendered: a leaf's database row stores
    /// them too, and rendering them once per leaf instead of twice is a tenth of the row's cost.
    package func essentials(subjectText: String, sanTexts: [String]) -> Essentials {
        Essentials(subject: subjectText, sans: sanTexts.sorted(), eku: extendedKeyUsage.map(\.rawValue), key: keyType.rawValue)
    }

    /// The template for signing at `now`, capped at the issuer's notAfter (SPEC §3).
    package func template(serial: SerialNumber, now: Date, issuerNotAfter: Date) -> CertificateTemplate {
        CertificateTemplate(
            subject: subject, serial: serial, notBefore: now.addingTimeInterval(-CertificateProfile.backdating),
            notAfter: min(validity.after(now), issuerNotAfter), keyUsage: keyUsage,
            extendedKeyUsage: extendedKeyUsage, subjectAlternativeNames: subjectAlternativeNames)
    }

    /// notBefore is set this far back so nodes whose clock is a little behind accept a new certificate.
    public static let backdating: TimeInterval = 3600
}

extension CertMode {
    package var extendedKeyUsage: [ExtendedKeyUsage] {
        switch self {
        case .server: return [.serverAuth]
        case .client: return [.clientAuth]
        case .both: return [.serverAuth, .clientAuth]
        }
    }
}
