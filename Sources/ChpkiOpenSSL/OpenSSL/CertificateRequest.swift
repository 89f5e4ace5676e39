import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// A PKCS#10 certificate signing request (OpenSSL `X509_REQ`), read for `chpki inspect`.
public final class CertificateRequest: @unchecked Sendable {
    let pointer: OpaquePointer

    public init(der: Data) throws {
        let request: OpaquePointer? = der.withUnsafeBytes { raw in
            var cursor: UnsafePointer<UInt8>? = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            return d2i_X509_REQ(nil, &cursor, raw.count)
        }
        pointer = try checkNotNil(request, "not a DER certificate request")
    }

    deinit { X509_REQ_free(pointer) }

    public var subject: DistinguishedName { distinguishedName(X509_REQ_get_subject_name(pointer)) }

    /// The subjectAltName of the requested extensions, if any.
    public var subjectAlternativeNames: [GeneralName] {
        guard let extensions = X509_REQ_get_extensions(pointer) else { return [] }
        defer { OPENSSL_sk_pop_free(extensions, { X509_EXTENSION_free(OpaquePointer($0)) }) }
        for index in 0..<OPENSSL_sk_num(extensions) {
            guard let raw = OPENSSL_sk_value(extensions, index) else { continue }
            let ext = OpaquePointer(raw)
            guard OBJ_obj2nid(X509_EXTENSION_get_object(ext)) == NID_subject_alt_name,
                  let decoded = X509V3_EXT_d2i(ext) else { continue }
            let names = OpaquePointer(decoded)
            defer { chpki_general_names_free(names) }
            return (0..<chpki_general_names_count(names)).map { GeneralName(openSSL: chpki_general_names_get(names, $0)) }
        }
        return []
    }

    public var keyType: KeyType? {
        guard let key = X509_REQ_get0_pubkey(pointer) else { return nil }
        return keyTypeOf(key)
    }

    public var keyDescription: String {
        guard let key = X509_REQ_get0_pubkey(pointer) else { return "unknown" }
        return describeKey(key)
    }

    /// True when the request is signed by the key it carries (proof of possession).
    public var isSignatureValid: Bool {
        guard let key = X509_REQ_get0_pubkey(pointer) else { return false }
        return X509_REQ_verify(pointer, key) == 1
    }
}
