import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// AES-256-GCM through EVP: authenticated encryption of leaf keys at rest. A sealed box is
/// `nonce (12) || ciphertext || tag (16)`; the associated data (e.g. the certificate's serial) is
/// authenticated, not stored, so a box moved to another row does not open.
public enum AES256GCM {
    public static let keyLength = 32
    public static let nonceLength = 12
    public static let tagLength = 16

    /// Fetched once: `EVP_aes_256_gcm()` makes every init look the cipher up again in the shared
    /// provider store, under the lock the signing workers would otherwise take for each leaf key.
    /// A fetched cipher is immutable and may be used by any thread.
    nonisolated(unsafe) private static let cipher: OpaquePointer? = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil)

    private static func fetchedCipher() throws -> OpaquePointer {
        try checkNotNil(cipher, "EVP_CIPHER_fetch(AES-256-GCM)")
    }

    public static func seal(_ plaintext: UnsafeRawBufferPointer, key: SecretBytes, associatedData: [UInt8]) throws -> Data {
        let nonce = try randomBytes(nonceLength)
        let context = try checkNotNil(EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new")
        defer { EVP_CIPHER_CTX_free(context) }
        try check(EVP_EncryptInit_ex(context, try fetchedCipher(), nil, nil, nil), "AES-256-GCM init")
        try key.withBytes { keyBytes in
            guard keyBytes.count == keyLength else { throw OpenSSLError(operation: "AES-256-GCM needs a 32-byte key", reasons: []) }
            try check(EVP_EncryptInit_ex(context, nil, nil, keyBytes.bindMemory(to: UInt8.self).baseAddress, nonce), "AES-256-GCM key")
        }
        var written: Int32 = 0
        if !associatedData.isEmpty {
            try check(EVP_EncryptUpdate(context, nil, &written, associatedData, Int32(associatedData.count)), "AES-256-GCM AAD")
        }
        var output = [UInt8](repeating: 0, count: plaintext.count + 16)
        try output.withUnsafeMutableBufferPointer { out in
            try check(EVP_EncryptUpdate(context, out.baseAddress, &written, plaintext.bindMemory(to: UInt8.self).baseAddress,
                                        Int32(plaintext.count)), "AES-256-GCM encryption")
            var final: Int32 = 0
            try check(EVP_EncryptFinal_ex(context, out.baseAddress! + Int(written), &final), "AES-256-GCM final")
            written += final
        }
        var tag = [UInt8](repeating: 0, count: tagLength)
        try check(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(tagLength), &tag), "AES-256-GCM tag")
        return Data(nonce + output.prefix(Int(written)) + tag)
    }

    /// Opens a box; throws `AuthenticationFailure` when the key, the data or the associated data is wrong.
    public static func open(_ box: Data, key: SecretBytes, associatedData: [UInt8]) throws -> SecretBytes {
        guard box.count >= nonceLength + tagLength else { throw AuthenticationFailure() }
        let bytes = [UInt8](box)
        let nonce = Array(bytes[0..<nonceLength])
        var tag = Array(bytes[(bytes.count - tagLength)...])
        let ciphertext = Array(bytes[nonceLength..<(bytes.count - tagLength)])
        let context = try checkNotNil(EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new")
        defer { EVP_CIPHER_CTX_free(context) }
        try check(EVP_DecryptInit_ex(context, try fetchedCipher(), nil, nil, nil), "AES-256-GCM init")
        try key.withBytes { keyBytes in
            guard keyBytes.count == keyLength else { throw OpenSSLError(operation: "AES-256-GCM needs a 32-byte key", reasons: []) }
            try check(EVP_DecryptInit_ex(context, nil, nil, keyBytes.bindMemory(to: UInt8.self).baseAddress, nonce), "AES-256-GCM key")
        }
        var written: Int32 = 0
        if !associatedData.isEmpty {
            try check(EVP_DecryptUpdate(context, nil, &written, associatedData, Int32(associatedData.count)), "AES-256-GCM AAD")
        }
        let result = SecretBytes(count: ciphertext.count)
        var failed = false
        result.withMutableBytes { out in
            let base = out.bindMemory(to: UInt8.self).baseAddress
            if EVP_DecryptUpdate(context, base, &written, ciphertext, Int32(ciphertext.count)) != 1 { failed = true; return }
            if EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(tagLength), &tag) != 1 { failed = true; return }
            var final: Int32 = 0
            if EVP_DecryptFinal_ex(context, base.map { $0 + Int(written) }, &final) != 1 { failed = true }
        }
        ERR_clear_error()
        guard !failed else { throw AuthenticationFailure() }
        return result
    }

    /// The box did not authenticate: wrong key (passphrase), or altered data.
    public struct AuthenticationFailure: Error, Sendable {}
}
