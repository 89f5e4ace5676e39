import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// A compromised key compromises every certificate that certifies it. `renew` keeps keys, so the
/// superseded pre-renewal certificate holds the same key as the valid one, is signed by a CA the
/// hosts still trust and may be valid for years: revoking for keyCompromise revokes every
/// unexpired certificate of this CA that holds one of the selected keys, whatever its status.
package enum KeyCompromise {
    /// Serials (not already revoked, not expired at `now`) of the leaves that hold the key of one of `selected`.
    package static func sharingKeys(with selected: [SerialNumber], in certificates: [IssuedCertificate], now: Date) throws -> [SerialNumber] {
        let leaves = certificates.filter { !$0.kind.isAuthority }
        let chosen = Set(selected)
        let keys = Set(try leaves.filter { chosen.contains($0.serial) }.map { try publicKey(of: $0) })
        return try leaves.filter { leaf in
            guard !chosen.contains(leaf.serial), leaf.status != .revoked, leaf.notAfter > now else { return false }
            return keys.contains(try publicKey(of: leaf))
        }.map(\.serial)
    }

    private static func publicKey(of record: IssuedCertificate) throws -> Data {
        do { return try record.certificate().publicKeyDER() } catch {
            throw ChpkiError.input(.caCorrupt, file: CADatabase.fileName, field: "certificates.serial=\(record.serial.hex)",
                                   "the stored certificate is unreadable: \(error)")
        }
    }
}
