import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// An X.509 certificate (OpenSSL `X509`). Immutable: built by `CertificateBuilder`, or parsed.
public final class Certificate: @unchecked Sendable {
    let pointer: OpaquePointer

    init(takingOwnershipOf pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { X509_free(pointer) }

    public convenience init(der: Data) throws {
        let certificate: OpaquePointer? = der.withUnsafeBytes { raw in
            var cursor: UnsafePointer<UInt8>? = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            return d2i_X509(nil, &cursor, raw.count)
        }
        self.init(takingOwnershipOf: try checkNotNil(certificate, "not a DER certificate"))
    }

    /// The first certificate in `pem`.
    public convenience init(pem: Data) throws {
        let certificate = try MemoryBIO.reading(pem) { PEM_read_bio_X509($0, nil, nil, nil) }
        self.init(takingOwnershipOf: try checkNotNil(certificate, "not a PEM certificate"))
    }

    /// Every certificate in a PEM file, in file order (a chain, a trust bundle).
    public static func all(pem: Data) throws -> [Certificate] {
        try PEMBlock.all(in: pem).filter { $0.label == "CERTIFICATE" || $0.label == "TRUSTED CERTIFICATE" }
            .map { try Certificate(der: $0.der) }
    }

    public func pemEncoded() throws -> Data {
        Data(try pemText().utf8)
    }

    /// The bytes PEM_write_bio_X509 writes, without the BIO (`PEMText`): the BIO path cost a
    /// signing worker more than half as much as the signature.
    public func pemText() throws -> String {
        var der: UnsafeMutablePointer<UInt8>?
        let length = Int(i2d_X509(pointer, &der))
        guard length > 0, let der else { throw OpenSSLError.drain("i2d_X509") }
        defer { chpki_free(der) }
        return PEMText.text(label: "CERTIFICATE", der: UnsafeRawBufferPointer(start: der, count: length))
    }

    public func derEncoded() throws -> Data {
        try derEncode("i2d_X509") { i2d_X509(pointer, $0) }
    }

    /// The SubjectPublicKeyInfo DER of the certified key: two certificates hold the same key iff these are equal.
    public func publicKeyDER() throws -> Data {
        let key = try checkNotNil(X509_get0_pubkey(pointer), "X509_get0_pubkey")
        return try derEncode("i2d_PUBKEY") { i2d_PUBKEY(key, $0) }
    }

    // MARK: Names

    public var subject: DistinguishedName { distinguishedName(X509_get_subject_name(pointer)) }
    public var issuer: DistinguishedName { distinguishedName(X509_get_issuer_name(pointer)) }

    /// OpenSSL's own RFC 2253 rendering of the subject (what `-nameopt RFC2253` prints).
    public var subjectRFC2253: String { formatName(X509_get_subject_name(pointer)) }
    public var issuerRFC2253: String { formatName(X509_get_issuer_name(pointer)) }

    /// `/C=US/O=.../CN=...`: the subject as `openssl ca` writes it into index.txt.
    public var subjectOneLine: String {
        guard let text = X509_NAME_oneline(X509_get_subject_name(pointer), nil, 0) else { return "" }
        defer { chpki_free(text) }
        return String(cString: text)
    }

    // MARK: Serial and validity

    public var serial: SerialNumber {
        guard let integer = X509_get0_serialNumber(pointer) else { return SerialNumber(bytes: [0]) }
        return SerialNumber(bytes: asn1StringBytes(integer))
    }

    public var notBefore: Date { date(X509_get0_notBefore(pointer)) }
    public var notAfter: Date { date(X509_get0_notAfter(pointer)) }

    // MARK: Extensions

    public var subjectAlternativeNames: [GeneralName] {
        guard let names = X509_get_ext_d2i(pointer, NID_subject_alt_name, nil, nil) else { return [] }
        let stack = OpaquePointer(names)
        defer { chpki_general_names_free(stack) }
        return (0..<chpki_general_names_count(stack)).map { GeneralName(openSSL: chpki_general_names_get(stack, $0)) }
    }

    public var keyUsage: KeyUsage {
        let flags = X509_get_key_usage(pointer)
        guard flags != UInt32.max else { return [] }  // extension absent
        var usage: KeyUsage = []
        if flags & UInt32(KU_DIGITAL_SIGNATURE) != 0 { usage.insert(.digitalSignature) }
        if flags & UInt32(KU_KEY_ENCIPHERMENT) != 0 { usage.insert(.keyEncipherment) }
        if flags & UInt32(KU_KEY_AGREEMENT) != 0 { usage.insert(.keyAgreement) }
        if flags & UInt32(KU_KEY_CERT_SIGN) != 0 { usage.insert(.keyCertSign) }
        if flags & UInt32(KU_CRL_SIGN) != 0 { usage.insert(.cRLSign) }
        return usage
    }

    /// Every extendedKeyUsage OID by OpenSSL's short name (serverAuth, clientAuth, ...).
    public var extendedKeyUsageNames: [String] {
        guard let raw = X509_get_ext_d2i(pointer, NID_ext_key_usage, nil, nil) else { return [] }
        let stack = OpaquePointer(raw)
        defer { EXTENDED_KEY_USAGE_free(stack) }
        return (0..<chpki_eku_count(stack)).map { objectName(chpki_eku_get(stack, $0)) }
    }

    public var isCA: Bool { X509_check_ca(pointer) >= 1 }

    /// pathLenConstraint, or nil when absent.
    public var pathLength: Int? {
        let length = X509_get_pathlen(pointer)
        return length < 0 ? nil : length
    }

    public var subjectKeyIdentifier: [UInt8]? {
        guard let identifier = X509_get0_subject_key_id(pointer) else { return nil }
        return asn1StringBytes(identifier)
    }

    public var authorityKeyIdentifier: [UInt8]? {
        guard let identifier = X509_get0_authority_key_id(pointer) else { return nil }
        return asn1StringBytes(identifier)
    }

    public var nameConstraints: NameConstraints? {
        guard let raw = X509_get_ext_d2i(pointer, NID_name_constraints, nil, nil) else { return nil }
        let constraints = raw.assumingMemoryBound(to: NAME_CONSTRAINTS.self)
        defer { NAME_CONSTRAINTS_free(constraints) }
        func read(_ subtrees: OpaquePointer?) -> [GeneralName] {
            (0..<chpki_subtrees_count(subtrees)).compactMap { index in
                guard let base = chpki_subtrees_get(subtrees, index)?.pointee.base else { return nil }
                return GeneralName(openSSL: base, inConstraint: true)
            }
        }
        return NameConstraints(permitted: read(constraints.pointee.permittedSubtrees),
                               excluded: read(constraints.pointee.excludedSubtrees))
    }

    /// Whether the extension with this OID short name (e.g. "basicConstraints") is marked critical.
    public func isCritical(_ extensionName: String) -> Bool? {
        let nid = OBJ_sn2nid(extensionName)
        let index = X509_get_ext_by_NID(pointer, nid, -1)
        guard index >= 0, let ext = X509_get_ext(pointer, index) else { return nil }
        return X509_EXTENSION_get_critical(ext) == 1
    }

    // MARK: Keys and signatures

    /// The chpki name of the certified key's type, or nil for other keys.
    public var keyType: KeyType? {
        guard let key = X509_get0_pubkey(pointer) else { return nil }
        return keyTypeOf(key)
    }

    public var keyDescription: String {
        guard let key = X509_get0_pubkey(pointer) else { return "unknown" }
        return describeKey(key)
    }

    /// SHA-256 over the DER certificate, `AB:CD:...` as `openssl x509 -fingerprint -sha256` prints it.
    public var fingerprintSHA256: String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(pointer, EVP_sha256(), &digest, &length) == 1 else { return "" }
        return Hex.upper(Array(digest.prefix(Int(length))), separator: UInt8(ascii: ":"))
    }

    /// True when the issuer and subject match and the signature verifies under the certificate's own key.
    public var isSelfSigned: Bool { X509_self_signed(pointer, 1) == 1 }

    /// True when `issuer`'s key made this certificate's signature.
    public func isSigned(by issuer: Certificate) -> Bool {
        guard let key = X509_get0_pubkey(issuer.pointer) else { return false }
        return X509_verify(pointer, key) == 1
    }

    public var signatureAlgorithm: String { objectName(OBJ_nid2obj(X509_get_signature_nid(pointer))) }
}

func distinguishedName(_ name: OpaquePointer?) -> DistinguishedName {
    guard let name else { return DistinguishedName([]) }
    var attributes: [DistinguishedName.Attribute] = []
    for index in 0..<X509_NAME_entry_count(name) {
        guard let entry = X509_NAME_get_entry(name, index) else { continue }
        let type = objectName(X509_NAME_ENTRY_get_object(entry))
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry))
        var value = ""
        if length >= 0, let utf8 {
            value = String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
            chpki_free(utf8)
        }
        attributes.append(DistinguishedName.Attribute(type, value))
    }
    return DistinguishedName(attributes)
}

func formatName(_ name: OpaquePointer?) -> String {
    (try? MemoryBIO.writingString { bio in
        _ = X509_NAME_print_ex(bio, name, 0, CHPKI_XN_FLAG_RFC2253_UTF8)
    }) ?? ""
}

func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date {
    var parts = tm()
    guard let time, ASN1_TIME_to_tm(time, &parts) == 1 else { return Date(timeIntervalSince1970: 0) }
    return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
}
