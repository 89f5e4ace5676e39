import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// The unencrypted PKCS#8 PEM of an EC key (RFC 5208 PrivateKeyInfo holding an RFC 5915
/// ECPrivateKey), written from the key's two numbers, byte for byte as OpenSSL 3 writes it. OpenSSL's
/// own path (`PEM_write_bio_PKCS8PrivateKey`) builds an OSSL_ENCODER_CTX per key, which walks every
/// provided encoder: for a batch of P-256 leaves that costs as much as signing them. The DER and
/// the PEM are built in wiped memory: the result is a `SecretBytes` and every scratch copy is cleansed.
extension PrivateKey {
    /// Nil for a key that is not P-256 or P-384 (the caller falls back to `pkcs8PEM()`).
    package func ecPKCS8PEM() throws -> SecretBytes? {
        let curve: (oid: [UInt8], size: Int)
        switch keyType {
        case .ecP256: curve = ([0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07], 32)  // prime256v1
        case .ecP384: curve = ([0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22], 48)  // secp384r1
        default: return nil
        }
        var scalar = [UInt8](repeating: 0, count: curve.size)
        defer { SecureMemory.cleanse(&scalar) }
        var number: OpaquePointer?
        try check(EVP_PKEY_get_bn_param(pointer, OSSL_PKEY_PARAM_PRIV_KEY, &number), "EVP_PKEY_get_bn_param(priv)")
        defer { BN_clear_free(number) }
        guard BN_bn2binpad(number, &scalar, Int32(curve.size)) == Int32(curve.size) else { throw OpenSSLError.drain("BN_bn2binpad") }
        var point = [UInt8](repeating: 0, count: 1 + 2 * curve.size)
        var length = 0
        try check(EVP_PKEY_get_octet_string_param(pointer, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, &point, point.count, &length),
                  "EVP_PKEY_get_octet_string_param(encoded-pub-key)")
        guard length == point.count else { return nil }  // a compressed point: not what OpenSSL writes here

        let idECPublicKey: [UInt8] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]
        var ecPrivateKey = DER.sequence([0x02, 0x01, 0x01] + DER.element(0x04, scalar) + DER.element(0xA1, DER.element(0x03, [0x00] + point)))
        defer { SecureMemory.cleanse(&ecPrivateKey) }
        var info = DER.sequence([0x02, 0x01, 0x00] + DER.sequence(idECPublicKey + curve.oid) + DER.element(0x04, ecPrivateKey))
        defer { SecureMemory.cleanse(&info) }
        return info.withUnsafeBytes { PEMText.secret(label: "PRIVATE KEY", der: $0) }
    }
}

/// Just enough DER for the structures above (definite lengths).
enum DER {
    static func element(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        [tag] + length(content.count) + content
    }

    static func sequence(_ content: [UInt8]) -> [UInt8] {
        element(0x30, content)
    }

    static func length(_ count: Int) -> [UInt8] {
        if count < 0x80 { return [UInt8(count)] }
        if count < 0x100 { return [0x81, UInt8(count)] }
        return [0x82, UInt8(count >> 8), UInt8(count & 0xFF)]
    }
}
