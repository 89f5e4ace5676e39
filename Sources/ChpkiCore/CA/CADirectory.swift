import Foundation

/// The CA directory of SPEC §6 and the names of what lives in it. Files 0600, directory 0700.
public struct CADirectory: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public static let rootCertificate = "root.pem"
    public static let rootKey = "root.key"
    public static let intermediateCertificate = "intermediate.pem"
    public static let intermediateKey = "intermediate.key"
    public static let crl = "crl.pem"
    public static let previousRoot = "previous-root.pem"
    public static let previousRootKey = "previous-root.key"
    public static let previousIntermediate = "previous-intermediate.pem"
    public static let previousIntermediateKey = "previous-intermediate.key"
    public static let crossSigned = "cross-signed.pem"
    public static let trustBundle = "trust-bundle.pem"
    public static let retired = "retired"

    /// Files whose presence means a CA (or the remains of one) is here; init-ca never overwrites them.
    public static let authorityFiles = [rootCertificate, rootKey, intermediateCertificate, intermediateKey,
                                        CADatabase.fileName, OpenSSLIndex.fileName, crl]

    public func file(_ name: String) -> String {
        Path.join(path, name)
    }

    /// The CA files already present, if any.
    public func existingAuthorityFiles() -> [String] {
        Self.authorityFiles.filter { FileManager.default.fileExists(atPath: file($0)) }
    }

    public var hasIntermediate: Bool {
        FileManager.default.fileExists(atPath: file(Self.intermediateCertificate))
    }
}
