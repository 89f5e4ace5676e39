import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// One thread's OpenSSL state for a signing batch. OpenSSL 3.0 guards its shared provider store
/// with read-write locks that every implicit algorithm fetch takes; two threads signing through the
/// default library context spend a third of their time fighting over them. A worker has its own
/// library context, reused key-generation contexts, and its own copy of the CA key and certificate,
/// so nothing it touches is shared. Keys and certificates it makes must be released before it is.
public final class SigningWorker {
    let libraryContext: OpaquePointer
    private var keygenContexts: [KeyType: OpaquePointer] = [:]
    private let issuerKey: OpaquePointer
    private let issuerCertificate: OpaquePointer?
    private let digestName: String?
    private let constants = ConstantExtensions()

    /// `signer`'s key and certificate copied into a fresh library context.
    public init(signer: Signer) throws {
        libraryContext = try checkNotNil(OSSL_LIB_CTX_new(), "OSSL_LIB_CTX_new")
        let keyPEM = try signer.key.pkcs8PEM()
        let context = libraryContext
        guard let key = try MemoryBIO.reading(keyPEM, { bio in
            PEM_read_bio_PrivateKey_ex(bio, nil, chpki_pem_password_callback(), nil, context, nil)
        }) else {
            OSSL_LIB_CTX_free(libraryContext)
            throw OpenSSLError.drain("copy the CA key into a worker context")
        }
        issuerKey = key
        issuerCertificate = signer.certificate.flatMap { X509_dup($0.pointer) }
        digestName = signer.key.signingDigestName
    }

    deinit {
        for context in keygenContexts.values { EVP_PKEY_CTX_free(context) }
        X509_free(issuerCertificate)
        EVP_PKEY_free(issuerKey)
        OSSL_LIB_CTX_free(libraryContext)
    }

    /// A fresh key, from a key-generation context kept per key type.
    public func generateKey(_ type: KeyType) throws -> PrivateKey {
        let context: OpaquePointer
        if let existing = keygenContexts[type] {
            context = existing
        } else {
            context = try PrivateKey.keygenContext(type, libraryContext: libraryContext)
            keygenContexts[type] = context
        }
        var key: OpaquePointer?
        try check(EVP_PKEY_generate(context, &key), "EVP_PKEY_generate(\(type.rawValue))")
        return PrivateKey(takingOwnershipOf: try checkNotNil(key, "EVP_PKEY_generate"))
    }

    /// Reads a PEM key into this worker's context (a renewal keeping its key).
    public func readKey(pem: Data) throws -> PrivateKey {
        let context = libraryContext
        let key = try MemoryBIO.reading(pem) { PEM_read_bio_PrivateKey_ex($0, nil, chpki_pem_password_callback(), nil, context, nil) }
        return PrivateKey(takingOwnershipOf: try checkNotNil(key, "cannot read the private key"))
    }

    /// Builds and signs `template` for `subjectKey` with this worker's copy of the CA key.
    public func sign(_ template: CertificateTemplate, publicKeyOf subjectKey: PrivateKey) throws -> SignedCertificate {
        let context = libraryContext
        let key = issuerKey
        let digest = digestName
        let certificate = try template.build(publicKeyOf: subjectKey, issuer: issuerCertificate, libraryContext: context,
                                             encodePublicKeyDirectly: true, constants: constants) { certificate in
            let digestContext = try checkNotNil(EVP_MD_CTX_new(), "EVP_MD_CTX_new")
            defer { EVP_MD_CTX_free(digestContext) }
            try check(EVP_DigestSignInit_ex(digestContext, nil, digest, context, nil, key, nil), "EVP_DigestSignInit_ex")
            guard X509_sign_ctx(certificate, digestContext) > 0 else { throw OpenSSLError.drain("X509_sign_ctx") }
        }
        return SignedCertificate(pem: try certificate.pemText(), serial: template.serial,
                                 subject: template.subject, subjectOneLine: certificate.subjectOneLine,
                                 subjectAlternativeNames: template.subjectAlternativeNames,
                                 notBefore: certificate.notBefore, notAfter: certificate.notAfter)
    }
}

/// A certificate a batch worker signed, as the CA database records it.
public struct SignedCertificate: Sendable {
    public var pem: String
    public var serial: SerialNumber
    public var subject: DistinguishedName
    public var subjectOneLine: String
    public var subjectAlternativeNames: [GeneralName]
    public var notBefore: Date
    public var notAfter: Date
}
