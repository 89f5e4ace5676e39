import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// Message digests through EVP.
public enum Digest {
    public static func sha256(_ data: Data) throws -> [UInt8] {
        try data.withUnsafeBytes { try sha256($0) }
    }

    /// The same over borrowed bytes (a key's `SecretBytes`, digested in place).
    public static func sha256(_ raw: UnsafeRawBufferPointer) throws -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        try check(EVP_Digest(raw.baseAddress, raw.count, &digest, &length, EVP_sha256(), nil), "EVP_Digest(SHA-256)")
        return Array(digest.prefix(Int(length)))
    }

    /// `AB:CD:...`, the way OpenSSL prints fingerprints.
    public static func sha256Hex(_ data: Data) throws -> String {
        Hex.upper(try sha256(data), separator: UInt8(ascii: ":"))
    }
}
