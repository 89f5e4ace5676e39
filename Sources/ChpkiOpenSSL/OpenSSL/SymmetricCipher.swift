import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// AES-256-CBC with PKCS#7 padding through EVP: the cipher of the `veil` secrets file
/// (`Veil::Cipher::V2`, Ruby's `OpenSSL::Cipher.new("aes-256-cbc")`).
public enum AES256CBC {
    public static let keyLength = 32
    public static let ivLength = 16

    public static func decrypt(_ ciphertext: Data, key: [UInt8], iv: [UInt8]) throws -> Data {
        try run(ciphertext, key: key, iv: iv, encrypt: false)
    }

    public static func encrypt(_ plaintext: Data, key: [UInt8], iv: [UInt8]) throws -> Data {
        try run(plaintext, key: key, iv: iv, encrypt: true)
    }

    private static func run(_ input: Data, key: [UInt8], iv: [UInt8], encrypt: Bool) throws -> Data {
        guard key.count == keyLength else {
            throw OpenSSLError(operation: "AES-256-CBC needs a \(keyLength)-byte key, got \(key.count) bytes", reasons: [])
        }
        guard iv.count == ivLength else {
            throw OpenSSLError(operation: "AES-256-CBC needs a \(ivLength)-byte IV, got \(iv.count) bytes", reasons: [])
        }
        let context = try checkNotNil(EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new")
        defer { EVP_CIPHER_CTX_free(context) }
        let operation = encrypt ? "AES-256-CBC encryption" : "AES-256-CBC decryption"
        try check(EVP_CipherInit_ex(context, EVP_aes_256_cbc(), nil, key, iv, encrypt ? 1 : 0), operation)
        var output = [UInt8](repeating: 0, count: input.count + ivLength)
        var written: Int32 = 0
        try input.withUnsafeBytes { raw in
            let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            try check(EVP_CipherUpdate(context, &output, &written, base, Int32(raw.count)), operation)
        }
        var final: Int32 = 0
        let status = output.withUnsafeMutableBufferPointer { buffer in
            EVP_CipherFinal_ex(context, buffer.baseAddress! + Int(written), &final)
        }
        guard status == 1 else {
            // Wipe whatever was decrypted before the padding check failed.
            for index in output.indices { output[index] = 0 }
            throw OpenSSLError.drain(operation)
        }
        let result = Data(output.prefix(Int(written + final)))
        for index in output.indices { output[index] = 0 }
        return result
    }
}
