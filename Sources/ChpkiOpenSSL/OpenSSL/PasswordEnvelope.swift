import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// CMS EnvelopedData (RFC 5652) with one password recipient (PWRI, RFC 3211): what
/// `openssl cms -encrypt -pwri_password` writes and `openssl cms -decrypt -pwri_password` opens.
///
/// Content: AES-256-CBC under a random content key. The content key is wrapped (RFC 3211
/// id-alg-PWRI-KEK, AES-256-CBC) with a key derived from the passphrase by PBKDF2. OpenSSL's
/// `CMS_add0_recipient_password` always uses PBKDF2's default PRF, HMAC-SHA1, with an 8-byte
/// random salt; chpki raises the iteration count to OWASP's figure for that PRF.
public enum PasswordEnvelope {
    /// OWASP (2023) for PBKDF2-HMAC-SHA1: 1,300,000 iterations (≈0.5 s on one core).
    public static let defaultIterations: Int32 = 1_300_000

    public enum Encoding: String, Sendable, CaseIterable {
        /// `-----BEGIN CMS-----` (`openssl cms -inform PEM`).
        case pem
        /// DER (`openssl cms -inform DER`).
        case der
    }

    /// Encrypts `content` for whoever knows `passphrase`.
    public static func seal(_ content: Data, passphrase: Passphrase, iterations: Int32 = defaultIterations,
                            encoding: Encoding = .pem) throws -> Data {
        let flags = UInt32(CMS_BINARY | CMS_PARTIAL)
        return try MemoryBIO.reading(content) { input in
            let cms = try checkNotNil(CMS_encrypt(nil, input, EVP_aes_256_cbc(), flags), "CMS_encrypt")
            defer { CMS_ContentInfo_free(cms) }
            // add0: on success the CMS structure owns (and clears and frees) the password copy.
            let length = passphrase.count
            let password = try checkNotNil(CRYPTO_malloc(length, #file, #line), "CRYPTO_malloc")
                .bindMemory(to: UInt8.self, capacity: length)
            passphrase.withBytes { password.update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: length) }
            guard CMS_add0_recipient_password(cms, iterations, NID_undef, NID_undef, password, length, nil) != nil else {
                CRYPTO_clear_free(password, length, #file, #line)
                throw OpenSSLError.drain("CMS_add0_recipient_password")
            }
            try check(CMS_final(cms, input, nil, flags), "CMS_final")
            return try MemoryBIO.writing { output in
                switch encoding {
                case .pem: try check(PEM_write_bio_CMS(output, cms), "PEM_write_bio_CMS")
                case .der: try check(i2d_CMS_bio(output, cms), "i2d_CMS_bio")
                }
            }
        }
    }

    /// True when `data` is a CMS EnvelopedData in PEM or DER (whatever its recipients).
    public static func isEnvelope(_ data: Data) -> Bool {
        guard let cms = try? parse(data) else { return false }
        defer { CMS_ContentInfo_free(cms) }
        return OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_enveloped
    }

    /// The content, or an `OpenSSLError` whose `isBadDecrypt`/`isWrongPassword` says the passphrase was wrong.
    public static func open(_ data: Data, passphrase: Passphrase) throws -> Data {
        let cms = try parse(data)
        defer { CMS_ContentInfo_free(cms) }
        guard OBJ_obj2nid(CMS_get0_type(cms)) == NID_pkcs7_enveloped else {
            throw OpenSSLError(operation: "not a CMS EnvelopedData", reasons: [])
        }
        var bytes = passphrase.bytes
        defer { for index in bytes.indices { bytes[index] = 0 } }
        let set = bytes.withUnsafeMutableBufferPointer { buffer in
            CMS_decrypt_set1_password(cms, buffer.baseAddress, buffer.count)
        }
        try check(set, "CMS_decrypt_set1_password")
        return try MemoryBIO.writing { output in
            try check(CMS_decrypt(cms, nil, nil, nil, output, UInt32(CMS_BINARY)), "CMS_decrypt")
        }
    }

    private static func parse(_ data: Data) throws -> OpaquePointer {
        let isPEM = data.prefix(64).range(of: Data("-----BEGIN ".utf8)) != nil
        let cms: OpaquePointer? = try MemoryBIO.reading(data) { bio in
            isPEM ? PEM_read_bio_CMS(bio, nil, nil, nil) : d2i_CMS_bio(bio, nil)
        }
        return try checkNotNil(cms, "not a CMS structure")
    }
}

extension OpenSSLError {
    /// True when CMS could not unwrap the content key or decrypt the content: a wrong password
    /// (or a damaged file, which cannot be told apart).
    public var isWrongPassword: Bool {
        isBadDecrypt || reasons.contains { $0.contains("unwrap failure") || $0.contains("no matching recipient") || $0.contains("decrypt error") }
    }
}
