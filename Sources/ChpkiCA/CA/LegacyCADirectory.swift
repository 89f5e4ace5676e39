import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// A CA directory made by chpki's first release kept its CA keys, CRL and cross-certificate only
/// in files, and told current from previous roots by file name. Opening it the first time (under
/// the exclusive lock) adopts them into `ca.db`, in one transaction; from then on the files are
/// views of the database like every other CA's.
enum LegacyCADirectory {
    static func adopt(_ directory: CADirectory, into database: CADatabase) throws {
        let authorities = try database.authorities()
        var files = CADatabase.LegacyFiles(roles: [:], keys: [:], crlPEM: nil, crossSignedPEM: nil)
        let placements: [(String, String, AuthorityRole)] = [
            (CADirectory.rootCertificate, CADirectory.rootKey, .current),
            (CADirectory.intermediateCertificate, CADirectory.intermediateKey, .current),
            (CADirectory.previousRoot, CADirectory.previousRootKey, .previous),
            (CADirectory.previousIntermediate, CADirectory.previousIntermediateKey, .previous),
        ]
        for (certificateName, keyName, role) in placements {
            guard let data = RegularFile.contents(directory.file(certificateName), limit: ReadLimits.caFile),
                  let certificate = try? Certificate(pem: data),
                  authorities.contains(where: { $0.serial == certificate.serial }) else { continue }
            files.roles[certificate.serial] = role
            if let key = RegularFile.contents(directory.file(keyName), limit: ReadLimits.caFile) { files.keys[certificate.serial] = key }
        }
        // The root itself must be placed: adopting with only intermediate.pem would commit a CA
        // without a current root, which no later run (even with root.pem back) could open.
        guard authorities.contains(where: { $0.kind == .root && files.roles[$0.serial] == .current }) else {
            throw ChpkiError.input(.caCorrupt, file: directory.file(CADirectory.rootCertificate), field: nil,
                                   "ca.db is from an older chpki and root.pem is missing or not one of its CA certificates")
        }
        files.crlPEM = RegularFile.contents(directory.file(CADirectory.crl), limit: ReadLimits.caFile)
        files.crossSignedPEM = RegularFile.contents(directory.file(CADirectory.crossSigned), limit: ReadLimits.caFile)
        try database.adoptLegacyFiles(files)
    }
}
