import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// Everything that goes into a certificate except the keys: the profile of SPEC §3 made concrete.
public struct CertificateTemplate: Sendable {
    public var subject: DistinguishedName
    public var serial: SerialNumber
    public var notBefore: Date
    public var notAfter: Date
    /// nil: not a CA (basicConstraints CA:FALSE is then written, critical).
    public var certificateAuthority: CertificateAuthorityConstraint?
    public var keyUsage: KeyUsage
    public var extendedKeyUsage: [ExtendedKeyUsage]
    public var subjectAlternativeNames: [GeneralName]
    public var nameConstraints: NameConstraints?

    public struct CertificateAuthorityConstraint: Sendable, Equatable {
        public var pathLength: Int?
        public init(pathLength: Int? = nil) { self.pathLength = pathLength }
    }

    public init(subject: DistinguishedName, serial: SerialNumber, notBefore: Date, notAfter: Date,
                certificateAuthority: CertificateAuthorityConstraint? = nil, keyUsage: KeyUsage,
                extendedKeyUsage: [ExtendedKeyUsage] = [], subjectAlternativeNames: [GeneralName] = [],
                nameConstraints: NameConstraints? = nil) {
        self.subject = subject
        self.serial = serial
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.certificateAuthority = certificateAuthority
        self.keyUsage = keyUsage
        self.extendedKeyUsage = extendedKeyUsage
        self.subjectAlternativeNames = subjectAlternativeNames
        self.nameConstraints = nameConstraints
    }
}

/// The issuer side of a signature: its certificate (absent for a self-signed root) and its key.
public struct Signer: Sendable {
    public let certificate: Certificate?
    public let key: PrivateKey

    public init(certificate: Certificate?, key: PrivateKey) {
        self.certificate = certificate
        self.key = key
    }
}

extension CertificateTemplate {
    /// Builds and signs the certificate for `subjectKey`. Safe to call from several threads at once
    /// with the same signer: each call has its own X509 and contexts; the signer is only read.
    public func sign(publicKeyOf subjectKey: PrivateKey, by signer: Signer) throws -> Certificate {
        try build(publicKeyOf: subjectKey, issuer: signer.certificate?.pointer, libraryContext: nil, encodePublicKeyDirectly: false) { certificate in
            guard X509_sign(certificate, signer.key.pointer, signer.key.signingDigest) > 0 else {
                throw OpenSSLError.drain("X509_sign")
            }
        }
    }

    /// Fills a new X509 from the template and hands it to `signWith`; `issuer` nil means self-signed.
    /// With `encodePublicKeyDirectly` the result is only good for encoding: OpenSSL holds no decoded
    /// public key for it (see `setPublicKeyDirectly`).
    /// `constants`, given by a signing worker (one issuer, one thread), keeps the extensions that are
    /// the same in each of its certificates.
    func build(publicKeyOf subjectKey: PrivateKey, issuer: OpaquePointer?, libraryContext: OpaquePointer?,
               encodePublicKeyDirectly: Bool, constants: ConstantExtensions? = nil,
               signWith: (OpaquePointer) throws -> Void) throws -> Certificate {
        let certificate = try checkNotNil(X509_new_ex(libraryContext, nil), "X509_new")
        let result = Certificate(takingOwnershipOf: certificate)  // frees on any throw below
        try check(X509_set_version(certificate, Int(X509_VERSION_3)), "X509_set_version")
        try setSerial(certificate)
        try setValidity(certificate)
        // Written into the certificate's own name: X509_set_subject_name would copy a built name by an
        // encode and decode round trip, which cost a leaf as much as its signature.
        try appendAttributes(of: subject, to: try checkNotNil(X509_get_subject_name(certificate), "X509_get_subject_name"))
        let issuerName = issuer.map { X509_get_subject_name($0) } ?? X509_get_subject_name(certificate)
        try check(X509_set_issuer_name(certificate, issuerName), "X509_set_issuer_name")
        if encodePublicKeyDirectly {
            try setPublicKeyDirectly(certificate, subjectKey)
        } else {
            try check(X509_set_pubkey(certificate, subjectKey.pointer), "X509_set_pubkey")
        }

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer ?? certificate, certificate, nil, nil, 0)
        chpki_x509v3_set_ctx_nodb(&context)

        if let certificateAuthority {
            let pathLength = certificateAuthority.pathLength.map { ",pathlen:\($0)" } ?? ""
            try addExtension(certificate, &context, NID_basic_constraints, "critical,CA:TRUE" + pathLength, constants)
        } else {
            try addExtension(certificate, &context, NID_basic_constraints, "critical,CA:FALSE", constants)
        }
        if !keyUsage.isEmpty {
            try addExtension(certificate, &context, NID_key_usage, "critical," + keyUsage.names.joined(separator: ","), constants)
        }
        if !extendedKeyUsage.isEmpty {
            try addExtension(certificate, &context, NID_ext_key_usage, extendedKeyUsage.map(\.rawValue).joined(separator: ","), constants)
        }
        // The key identifier is a hash of this certificate's own key: never a constant.
        try addExtension(certificate, &context, NID_subject_key_identifier, "hash", nil)
        try addExtension(certificate, &context, NID_authority_key_identifier, "keyid:always", issuer == nil ? nil : constants)
        if !subjectAlternativeNames.isEmpty {
            let names = try makeGeneralNames(subjectAlternativeNames)
            defer { chpki_general_names_free(names) }
            try check(X509_add1_ext_i2d(certificate, NID_subject_alt_name, UnsafeMutableRawPointer(names), 0, UInt(X509V3_ADD_DEFAULT)),
                      "add subjectAltName")
        }
        if let nameConstraints {
            try addNameConstraints(certificate, nameConstraints)
        }
        try signWith(certificate)
        return result
    }

    /// For EC and Ed25519 keys the SubjectPublicKeyInfo is set from the key's public octets with
    /// OpenSSL's own X509_PUBKEY_set0_param. X509_set_pubkey would get the same DER through an
    /// OSSL_ENCODER round trip, whose lookup of every provided encoder costs more than the signature.
    /// The X509 then has no cached EVP_PKEY, so X509_get0_pubkey on it returns NULL until re-parsed.
    private func setPublicKeyDirectly(_ certificate: OpaquePointer, _ key: PrivateKey) throws {
        let algorithm: (object: Int32, parameterType: Int32, parameter: Int32)
        var octets: [UInt8]
        switch key.keyType {
        case .ecP256, .ecP384:
            algorithm = (NID_X9_62_id_ecPublicKey, V_ASN1_OBJECT, key.keyType == .ecP256 ? NID_X9_62_prime256v1 : NID_secp384r1)
            octets = [UInt8](repeating: 0, count: 133)
            var length = 0
            try check(EVP_PKEY_get_octet_string_param(key.pointer, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, &octets, octets.count, &length),
                      "EVP_PKEY_get_octet_string_param(encoded-pub-key)")
            octets.removeSubrange(length...)
        case .ed25519:
            algorithm = (NID_ED25519, V_ASN1_UNDEF, NID_undef)
            octets = [UInt8](repeating: 0, count: 32)
            var length = octets.count
            try check(EVP_PKEY_get_raw_public_key(key.pointer, &octets, &length), "EVP_PKEY_get_raw_public_key")
        default:
            try check(X509_set_pubkey(certificate, key.pointer), "X509_set_pubkey")
            return
        }
        guard let publicKey = X509_get_X509_PUBKEY(certificate),
              let copy = CRYPTO_malloc(octets.count, #file, #line)?.assumingMemoryBound(to: UInt8.self) else {
            throw OpenSSLError.drain("X509_get_X509_PUBKEY")
        }
        copy.initialize(from: octets, count: octets.count)
        let parameter: UnsafeMutableRawPointer? = algorithm.parameterType == V_ASN1_OBJECT
            ? UnsafeMutableRawPointer(OBJ_nid2obj(algorithm.parameter)) : nil
        guard X509_PUBKEY_set0_param(publicKey, OBJ_nid2obj(algorithm.object), algorithm.parameterType, parameter,
                                     copy, Int32(octets.count)) == 1 else {
            CRYPTO_free(copy, #file, #line)
            throw OpenSSLError.drain("X509_PUBKEY_set0_param")
        }
    }

    private func setSerial(_ certificate: OpaquePointer) throws {
        let number = try checkNotNil(BN_bin2bn(serial.bytes, Int32(serial.bytes.count), nil), "BN_bin2bn")
        defer { BN_free(number) }
        let integer = try checkNotNil(BN_to_ASN1_INTEGER(number, nil), "BN_to_ASN1_INTEGER")
        defer { ASN1_INTEGER_free(integer) }
        try check(X509_set_serialNumber(certificate, integer), "X509_set_serialNumber")
    }

    private func setValidity(_ certificate: OpaquePointer) throws {
        for (date, setter) in [(notBefore, X509_set1_notBefore), (notAfter, X509_set1_notAfter)] {
            let time = try checkNotNil(ASN1_TIME_set(nil, time_t(date.timeIntervalSince1970.rounded(.down))), "ASN1_TIME_set")
            defer { ASN1_TIME_free(time) }
            try check(setter(certificate, time), "X509_set1_notBefore/After")
        }
    }

    /// Extensions whose value is a constant chpki wrote: OpenSSL's own config syntax builds them,
    /// once per worker for those in `constants`.
    private func addExtension(_ certificate: OpaquePointer, _ context: inout X509V3_CTX, _ nid: Int32, _ value: String,
                              _ constants: ConstantExtensions?) throws {
        func make() throws -> OpaquePointer {
            try checkNotNil(X509V3_EXT_nconf_nid(nil, &context, nid, value), "extension \(objectName(OBJ_nid2obj(nid)))=\(value)")
        }
        if let constants {
            try check(X509_add_ext(certificate, try constants.extensionFor(nid: nid, value: value, make: make), -1), "X509_add_ext")
        } else {
            let ext = try make()
            defer { X509_EXTENSION_free(ext) }
            try check(X509_add_ext(certificate, ext, -1), "X509_add_ext")
        }
    }

    private func addNameConstraints(_ certificate: OpaquePointer, _ constraints: NameConstraints) throws {
        let extensionValue = try checkNotNil(NAME_CONSTRAINTS_new(), "NAME_CONSTRAINTS_new")
        defer { NAME_CONSTRAINTS_free(extensionValue) }
        func subtrees(_ names: [GeneralName]) throws -> OpaquePointer? {
            guard !names.isEmpty else { return nil }
            let stack = try checkNotNil(chpki_subtrees_new(), "sk_GENERAL_SUBTREE_new")
            for name in names {
                let subtree = try checkNotNil(GENERAL_SUBTREE_new(), "GENERAL_SUBTREE_new")
                GENERAL_NAME_free(subtree.pointee.base)
                subtree.pointee.base = try name.makeOpenSSL()
                guard chpki_subtrees_push(stack, subtree) > 0 else {
                    GENERAL_SUBTREE_free(subtree)
                    throw OpenSSLError.drain("sk_GENERAL_SUBTREE_push")
                }
            }
            return stack
        }
        extensionValue.pointee.permittedSubtrees = try subtrees(constraints.permitted)
        extensionValue.pointee.excludedSubtrees = try subtrees(constraints.excluded)
        try check(X509_add1_ext_i2d(certificate, NID_name_constraints, UnsafeMutableRawPointer(extensionValue), 1, UInt(X509V3_ADD_DEFAULT)),
                  "add nameConstraints")
    }
}

/// Appends `name`'s attributes to `x509Name`, in order (UTF8String values; C as PrintableString).
/// The usual types go by their NID: OpenSSL's lookup of a type by its text takes a lock on the
/// object table and string compares, for each attribute of each leaf, on every signing thread.
/// The entry is the same either way (the text names the same object).
func appendAttributes(of name: DistinguishedName, to x509Name: OpaquePointer) throws {
    for attribute in name.attributes {
        let bytes = Array(attribute.value.utf8)
        let added = if let nid = attributeNIDs[attribute.type] {
            X509_NAME_add_entry_by_NID(x509Name, nid, MBSTRING_UTF8, bytes, Int32(bytes.count), -1, 0)
        } else {
            X509_NAME_add_entry_by_txt(x509Name, attribute.type, MBSTRING_UTF8, bytes, Int32(bytes.count), -1, 0)
        }
        try check(added, "subject attribute \(attribute.type)")
    }
}

private let attributeNIDs: [String: Int32] = [
    "C": NID_countryName, "ST": NID_stateOrProvinceName, "L": NID_localityName, "O": NID_organizationName,
    "OU": NID_organizationalUnitName, "CN": NID_commonName, "DC": NID_domainComponent,
]

/// Extensions a signing worker writes unchanged into each of its certificates (basicConstraints,
/// key usages, and its one issuer's authorityKeyIdentifier), each built once from OpenSSL's config
/// syntax and then copied by X509_add_ext. Not thread-safe: one per worker.
final class ConstantExtensions {
    private struct Key: Hashable {
        var nid: Int32
        var value: String
    }

    private var built: [Key: OpaquePointer] = [:]

    deinit {
        for ext in built.values { X509_EXTENSION_free(ext) }
    }

    func extensionFor(nid: Int32, value: String, make: () throws -> OpaquePointer) throws -> OpaquePointer {
        let key = Key(nid: nid, value: value)
        if let ext = built[key] { return ext }
        let ext = try make()
        built[key] = ext
        return ext
    }
}
