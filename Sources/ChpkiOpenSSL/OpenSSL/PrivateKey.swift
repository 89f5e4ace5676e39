import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// How a private key is protected at rest in PKCS#8 (SPEC §6).
public enum KeyProtection: Sendable, Equatable {
    /// scrypt N=16384, r=8, p=5: OWASP's equivalent of N=2^17,p=1 that still fits OpenSSL's default
    /// 32 MiB scrypt memory limit, so stock `openssl pkey` opens the key.
    public static let scryptDefault = KeyProtection.scrypt(n: 16384, r: 8, p: 5)
    public static let pbkdf2Default = KeyProtection.pbkdf2(iterations: 600_000)

    case scrypt(n: UInt64, r: UInt64, p: UInt64)
    case pbkdf2(iterations: Int32)
}

/// An EVP_PKEY private key. Immutable once made, so it may be shared between signing threads.
public final class PrivateKey: @unchecked Sendable {
    let pointer: OpaquePointer

    init(takingOwnershipOf pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { EVP_PKEY_free(pointer) }

    /// A fresh key of the given type from OpenSSL's default RNG.
    public static func generate(_ type: KeyType) throws -> PrivateKey {
        let context = try keygenContext(type, libraryContext: nil)
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        try check(EVP_PKEY_generate(context, &key), "EVP_PKEY_generate(\(type.rawValue))")
        return PrivateKey(takingOwnershipOf: try checkNotNil(key, "EVP_PKEY_generate"))
    }

    /// A key-generation context for `type`, ready for repeated EVP_PKEY_generate calls.
    static func keygenContext(_ type: KeyType, libraryContext: OpaquePointer?) throws -> OpaquePointer {
        let algorithm: String
        switch type {
        case .rsa2048, .rsa3072, .rsa4096: algorithm = "RSA"
        case .ecP256, .ecP384: algorithm = "EC"
        case .ed25519: algorithm = "ED25519"
        }
        let context = try checkNotNil(EVP_PKEY_CTX_new_from_name(libraryContext, algorithm, nil), "EVP_PKEY_CTX_new_from_name(\(algorithm))")
        do {
            try check(EVP_PKEY_keygen_init(context), "EVP_PKEY_keygen_init")
            switch type {
            case .rsa2048: try check(EVP_PKEY_CTX_set_rsa_keygen_bits(context, 2048), "set RSA bits")
            case .rsa3072: try check(EVP_PKEY_CTX_set_rsa_keygen_bits(context, 3072), "set RSA bits")
            case .rsa4096: try check(EVP_PKEY_CTX_set_rsa_keygen_bits(context, 4096), "set RSA bits")
            case .ecP256: try check(EVP_PKEY_CTX_set_group_name(context, "prime256v1"), "set EC group")
            case .ecP384: try check(EVP_PKEY_CTX_set_group_name(context, "secp384r1"), "set EC group")
            case .ed25519: break
            }
        } catch {
            EVP_PKEY_CTX_free(context)
            throw error
        }
        return context
    }

    /// Reads the first private key in PEM: PKCS#8 (plain or encrypted), PKCS#1 or SEC1.
    /// An encrypted key without a passphrase fails; OpenSSL is never allowed to prompt.
    public convenience init(pem: Data, passphrase: Passphrase? = nil) throws {
        let key: OpaquePointer? = try MemoryBIO.reading(pem) { bio in
            if let passphrase {
                return passphrase.withCString { password in
                    PEM_read_bio_PrivateKey(bio, nil, chpki_pem_password_callback(), UnsafeMutableRawPointer(mutating: password))
                }
            }
            return PEM_read_bio_PrivateKey(bio, nil, chpki_pem_password_callback(), nil)
        }
        guard let key else { throw OpenSSLError.drain("cannot read the private key") }
        self.init(takingOwnershipOf: key)
    }

    /// Reads an unencrypted PEM key straight from a wiped buffer, without a copy that would not be.
    public convenience init(pem: SecretBytes) throws {
        let key: OpaquePointer? = try pem.withBytes { bytes in
            let bio = try checkNotNil(BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)), "BIO_new_mem_buf")
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, chpki_pem_password_callback(), nil)
        }
        guard let key else { throw OpenSSLError.drain("cannot read the private key") }
        self.init(takingOwnershipOf: key)
    }

    /// The key type chpki would name it by, or nil for anything else (e.g. RSA-1024, P-521).
    public var keyType: KeyType? {
        switch EVP_PKEY_get_base_id(pointer) {
        case EVP_PKEY_RSA:
            switch EVP_PKEY_get_bits(pointer) {
            case 2048: return .rsa2048
            case 3072: return .rsa3072
            case 4096: return .rsa4096
            default: return nil
            }
        case EVP_PKEY_EC:
            switch groupName {
            case "prime256v1", "P-256": return .ecP256
            case "secp384r1", "P-384": return .ecP384
            default: return nil
            }
        case EVP_PKEY_ED25519: return .ed25519
        default: return nil
        }
    }

    /// "RSA 2048", "EC prime256v1", "ED25519": a description for keys chpki does not name.
    public var algorithmDescription: String {
        describeKey(pointer)
    }

    var groupName: String {
        var buffer = [CChar](repeating: 0, count: 64)
        var length = 0
        guard EVP_PKEY_get_group_name(pointer, &buffer, buffer.count, &length) == 1 else { return "" }
        return cString(buffer)
    }

    /// Unencrypted PKCS#8 (`BEGIN PRIVATE KEY`): the one format every service in SPEC §4 loads.
    public func pkcs8PEM() throws -> Data {
        try MemoryBIO.writing { bio in
            try check(PEM_write_bio_PKCS8PrivateKey(bio, pointer, nil, nil, 0, nil, nil), "PEM_write_bio_PKCS8PrivateKey")
        }
    }

    /// Encrypted PKCS#8 (`BEGIN ENCRYPTED PRIVATE KEY`), PBES2 with AES-256-CBC and the given KDF.
    public func encryptedPKCS8PEM(passphrase: Passphrase, protection: KeyProtection = .scryptDefault) throws -> Data {
        let info = try checkNotNil(EVP_PKEY2PKCS8(pointer), "EVP_PKEY2PKCS8")
        defer { PKCS8_PRIV_KEY_INFO_free(info) }
        var salt = try randomBytes(16)
        let algorithm: UnsafeMutablePointer<X509_ALGOR>? = salt.withUnsafeMutableBufferPointer { saltBuffer in
            switch protection {
            case let .scrypt(n, r, p):
                return PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), saltBuffer.baseAddress, Int32(saltBuffer.count), nil, n, r, p)
            case let .pbkdf2(iterations):
                return PKCS5_pbe2_set_iv(EVP_aes_256_cbc(), iterations, saltBuffer.baseAddress, Int32(saltBuffer.count), nil, NID_hmacWithSHA256)
            }
        }
        let pbe = try checkNotNil(algorithm, "PKCS5_pbe2_set")
        let signature = passphrase.withCString { password in
            PKCS8_set0_pbe(password, Int32(passphrase.count), info, pbe)
        }
        guard let signature else {
            X509_ALGOR_free(pbe)
            throw OpenSSLError.drain("PKCS8_set0_pbe")
        }
        defer { X509_SIG_free(signature) }
        return try MemoryBIO.writing { bio in
            try check(PEM_write_bio_PKCS8(bio, signature), "PEM_write_bio_PKCS8")
        }
    }

    /// PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`); only for tests that show services refusing them.
    public func traditionalPEM() throws -> Data {
        try MemoryBIO.writing { bio in
            try check(PEM_write_bio_PrivateKey_traditional(bio, pointer, nil, nil, 0, nil, nil), "PEM_write_bio_PrivateKey_traditional")
        }
    }

    /// The SubjectPublicKeyInfo DER of the public half.
    public func publicKeyDER() throws -> Data {
        try derEncode("i2d_PUBKEY") { i2d_PUBKEY(pointer, $0) }
    }

    /// The public half as `BEGIN PUBLIC KEY` PEM.
    public func publicKeyPEM() throws -> Data {
        try MemoryBIO.writing { bio in
            try check(PEM_write_bio_PUBKEY(bio, pointer), "PEM_write_bio_PUBKEY")
        }
    }

    /// True when `certificate` carries this key's public half.
    public func matches(_ certificate: Certificate) -> Bool {
        guard let publicKey = X509_get0_pubkey(certificate.pointer) else { return false }
        return EVP_PKEY_eq(pointer, publicKey) == 1
    }

    /// The digest chpki signs with under this key: SHA-384 for P-384 and RSA-4096, none (intrinsic) for Ed25519.
    var signingDigestName: String? {
        switch keyType {
        case .ed25519: return nil
        case .ecP384, .rsa4096: return "SHA384"
        default: return "SHA256"
        }
    }

    var signingDigest: OpaquePointer? {
        signingDigestName.flatMap { EVP_get_digestbyname($0) }
    }
}

func describeKey(_ key: OpaquePointer) -> String {
    switch EVP_PKEY_get_base_id(key) {
    case EVP_PKEY_RSA: return "RSA \(EVP_PKEY_get_bits(key))"
    case EVP_PKEY_EC:
        var buffer = [CChar](repeating: 0, count: 64)
        var length = 0
        _ = EVP_PKEY_get_group_name(key, &buffer, buffer.count, &length)
        return "EC \(cString(buffer))"
    case EVP_PKEY_ED25519: return "ED25519"
    default:
        if let name = EVP_PKEY_get0_type_name(key) { return String(cString: name) }
        return "unknown"
    }
}

func keyTypeOf(_ key: OpaquePointer) -> KeyType? {
    EVP_PKEY_up_ref(key)
    return PrivateKey(takingOwnershipOf: key).keyType
}

/// Cryptographically random bytes from OpenSSL's DRBG.
public func randomBytes(_ count: Int) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    try check(RAND_bytes(&bytes, Int32(count)), "RAND_bytes")
    return bytes
}
