import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// The protection parameters of an `ENCRYPTED PRIVATE KEY` (PKCS#8 EncryptedPrivateKeyInfo),
/// read without the passphrase: scheme, KDF and its cost, cipher.
public struct EncryptedKeyInfo: Sendable, Equatable, Encodable {
    public var scheme: String
    public var kdf: String?
    public var iterations: Int?
    public var scryptN: Int?
    public var scryptR: Int?
    public var scryptP: Int?
    public var prf: String?
    public var cipher: String?

    enum CodingKeys: String, CodingKey {
        case scheme, kdf, iterations, prf, cipher
        case scryptN = "scrypt_n", scryptR = "scrypt_r", scryptP = "scrypt_p"
    }

    public init(der: Data) throws {
        let signature: OpaquePointer? = der.withUnsafeBytes { raw in
            var cursor: UnsafePointer<UInt8>? = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            return d2i_X509_SIG(nil, &cursor, raw.count)
        }
        let sig = try checkNotNil(signature, "not a PKCS#8 EncryptedPrivateKeyInfo")
        defer { X509_SIG_free(sig) }
        var algorithm: UnsafePointer<X509_ALGOR>?
        var digest: UnsafePointer<ASN1_OCTET_STRING>?
        X509_SIG_get0(sig, &algorithm, &digest)
        guard let algorithm else { throw OpenSSLError(operation: "encrypted key without an algorithm", reasons: []) }
        scheme = objectName(algorithm.pointee.algorithm)
        guard OBJ_obj2nid(algorithm.pointee.algorithm) == NID_pbes2,
              let sequence = sequenceBytes(algorithm.pointee.parameter) else { return }
        let parameters: UnsafeMutablePointer<PBE2PARAM>? = sequence.withUnsafeBytes { raw in
            var cursor: UnsafePointer<UInt8>? = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            return d2i_PBE2PARAM(nil, &cursor, raw.count)
        }
        guard let parameters else { return }
        defer { PBE2PARAM_free(parameters) }
        scheme = "PBES2"
        cipher = parameters.pointee.encryption.map { objectName($0.pointee.algorithm) }
        guard let keyFunction = parameters.pointee.keyfunc else { return }
        let kdfNID = OBJ_obj2nid(keyFunction.pointee.algorithm)
        guard let kdfParameters = sequenceBytes(keyFunction.pointee.parameter) else { return }
        if kdfNID == NID_id_scrypt {
            kdf = "scrypt"
            let scrypt: UnsafeMutablePointer<SCRYPT_PARAMS>? = kdfParameters.withUnsafeBytes { raw in
                var cursor: UnsafePointer<UInt8>? = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
                return d2i_SCRYPT_PARAMS(nil, &cursor, raw.count)
            }
            if let scrypt {
                defer { SCRYPT_PARAMS_free(scrypt) }
                scryptN = ASN1_INTEGER_get(scrypt.pointee.costParameter)
                scryptR = ASN1_INTEGER_get(scrypt.pointee.blockSize)
                scryptP = ASN1_INTEGER_get(scrypt.pointee.parallelizationParameter)
            }
        } else if kdfNID == NID_id_pbkdf2 {
            kdf = "pbkdf2"
            let pbkdf2: UnsafeMutablePointer<PBKDF2PARAM>? = kdfParameters.withUnsafeBytes { raw in
                var cursor: UnsafePointer<UInt8>? = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
                return d2i_PBKDF2PARAM(nil, &cursor, raw.count)
            }
            if let pbkdf2 {
                defer { PBKDF2PARAM_free(pbkdf2) }
                iterations = ASN1_INTEGER_get(pbkdf2.pointee.iter)
                prf = pbkdf2.pointee.prf.map { objectName($0.pointee.algorithm) } ?? "hmacWithSHA1"
            }
        } else {
            kdf = objectName(keyFunction.pointee.algorithm)
        }
    }
}

/// The DER of an ASN1_TYPE holding a SEQUENCE, as the PBES2 parameter fields do.
private func sequenceBytes(_ type: UnsafeMutablePointer<ASN1_TYPE>?) -> Data? {
    guard let type, type.pointee.type == V_ASN1_SEQUENCE, let sequence = type.pointee.value.sequence else { return nil }
    return Data(asn1StringBytes(sequence))
}
