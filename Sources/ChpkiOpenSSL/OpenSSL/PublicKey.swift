import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// A public key (EVP_PKEY holding only the public half), read from `BEGIN PUBLIC KEY`
/// (SubjectPublicKeyInfo) or `BEGIN RSA PUBLIC KEY` (PKCS#1) PEM.
public final class PublicKey: @unchecked Sendable {
    let pointer: OpaquePointer

    init(takingOwnershipOf pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { EVP_PKEY_free(pointer) }

    public convenience init(pem: Data) throws {
        var key: OpaquePointer?
        let decoder = try checkNotNil(
            OSSL_DECODER_CTX_new_for_pkey(&key, "PEM", nil, nil, CHPKI_EVP_PKEY_PUBLIC_KEY, nil, nil),
            "OSSL_DECODER_CTX_new_for_pkey")
        defer { OSSL_DECODER_CTX_free(decoder) }
        let decoded: Int32 = pem.withUnsafeBytes { raw in
            var cursor: UnsafePointer<UInt8>? = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            var length = raw.count
            return OSSL_DECODER_from_data(decoder, &cursor, &length)
        }
        guard decoded == 1, let key else {
            if let key { EVP_PKEY_free(key) }
            throw OpenSSLError.drain("cannot read the public key")
        }
        self.init(takingOwnershipOf: key)
    }

    /// The SubjectPublicKeyInfo DER.
    public func der() throws -> Data {
        try derEncode("i2d_PUBKEY") { i2d_PUBKEY(pointer, $0) }
    }

    public var algorithmDescription: String { describeKey(pointer) }
}

extension PrivateKey {
    /// SHA-256 of the SubjectPublicKeyInfo DER, `AB:CD:...`: names a key without showing it.
    public func publicKeyFingerprint() throws -> String {
        try Digest.sha256Hex(publicKeyDER())
    }
}

extension PublicKey {
    public func fingerprint() throws -> String {
        try Digest.sha256Hex(der())
    }
}
