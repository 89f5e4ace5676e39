import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

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

    /// The directory as an absolute path (relative ones against the working directory), for
    /// messages that must say where chpki looked.
    public var absolutePath: String {
        URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true))
            .standardizedFileURL.path
    }

    /// "No CA here": where chpki looked and how to point it elsewhere. It never tells the operator
    /// to create one outright: run from the wrong directory, that would make a second CA beside the
    /// cluster's own.
    public var missingCA: ChpkiError {
        ChpkiError.input(.caNotFound, file: absolutePath, field: "--ca-dir",
                         "no CA here (no \(CADatabase.fileName) in \(absolutePath)); point chpki at the CA with --ca-dir DIR "
                         + "or CHPKI_CA_DIR=DIR (only if this is a new cluster: 'chpki init-ca' creates its CA)")
    }

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
