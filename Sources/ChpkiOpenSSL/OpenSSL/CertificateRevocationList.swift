import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// A signed CRL v2 (OpenSSL `X509_CRL`).
public final class CertificateRevocationList: @unchecked Sendable {
    let pointer: OpaquePointer

    init(takingOwnershipOf pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit { X509_CRL_free(pointer) }

    public struct Entry: Sendable {
        public var serial: SerialNumber
        public var revokedAt: Date
        /// RFC 5280 CRLReason code (0 unspecified, 1 keyCompromise, ... ); nil writes no reason extension.
        public var reasonCode: Int?

        public init(serial: SerialNumber, revokedAt: Date, reasonCode: Int?) {
            self.serial = serial
            self.revokedAt = revokedAt
            self.reasonCode = reasonCode
        }
    }

    /// Signs a CRL over `entries` with `number` as its cRLNumber, valid from `thisUpdate` to `nextUpdate`.
    public static func sign(entries: [Entry], number: Int, thisUpdate: Date, nextUpdate: Date,
                            issuer: Certificate, key: PrivateKey) throws -> CertificateRevocationList {
        let crl = try checkNotNil(X509_CRL_new(), "X509_CRL_new")
        let result = CertificateRevocationList(takingOwnershipOf: crl)
        try check(X509_CRL_set_version(crl, Int(X509_CRL_VERSION_2)), "X509_CRL_set_version")
        try check(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer.pointer)), "X509_CRL_set_issuer_name")
        try withTime(thisUpdate) { try check(X509_CRL_set1_lastUpdate(crl, $0), "X509_CRL_set1_lastUpdate") }
        try withTime(nextUpdate) { try check(X509_CRL_set1_nextUpdate(crl, $0), "X509_CRL_set1_nextUpdate") }
        for entry in entries {
            let revoked = try checkNotNil(X509_REVOKED_new(), "X509_REVOKED_new")
            do {
                try fill(revoked, entry)
                try check(X509_CRL_add0_revoked(crl, revoked), "X509_CRL_add0_revoked")  // takes ownership
            } catch {
                X509_REVOKED_free(revoked)
                throw error
            }
        }
        try check(X509_CRL_sort(crl), "X509_CRL_sort")
        try withInteger(bigEndian(number)) { integer in
            try check(X509_CRL_add1_ext_i2d(crl, NID_crl_number, UnsafeMutableRawPointer(integer), 0, 0), "add cRLNumber")
        }
        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer.pointer, nil, nil, crl, 0)
        chpki_x509v3_set_ctx_nodb(&context)
        let aki = try checkNotNil(X509V3_EXT_nconf_nid(nil, &context, NID_authority_key_identifier, "keyid:always"), "CRL AKI")
        defer { X509_EXTENSION_free(aki) }
        try check(X509_CRL_add_ext(crl, aki, -1), "X509_CRL_add_ext")
        guard X509_CRL_sign(crl, key.pointer, key.signingDigest) > 0 else { throw OpenSSLError.drain("X509_CRL_sign") }
        return result
    }

    public convenience init(pem: Data) throws {
        let crl = try MemoryBIO.reading(pem) { PEM_read_bio_X509_CRL($0, nil, nil, nil) }
        self.init(takingOwnershipOf: try checkNotNil(crl, "not a PEM CRL"))
    }

    public convenience init(der: Data) throws {
        let crl: OpaquePointer? = der.withUnsafeBytes { raw in
            var cursor: UnsafePointer<UInt8>? = raw.baseAddress?.assumingMemoryBound(to: UInt8.self)
            return d2i_X509_CRL(nil, &cursor, raw.count)
        }
        self.init(takingOwnershipOf: try checkNotNil(crl, "not a DER CRL"))
    }

    /// Every CRL in `pem` (crl.pem holds one per CA with leaves).
    public static func all(inPEM pem: Data) throws -> [CertificateRevocationList] {
        try PEMBlock.all(in: pem).filter { $0.label == "X509 CRL" }.map { try CertificateRevocationList(der: $0.der) }
    }

    public func pemEncoded() throws -> Data {
        try MemoryBIO.writing { bio in try check(PEM_write_bio_X509_CRL(bio, pointer), "PEM_write_bio_X509_CRL") }
    }

    public var issuer: DistinguishedName { distinguishedName(X509_CRL_get_issuer(pointer)) }
    public var thisUpdate: Date { date(X509_CRL_get0_lastUpdate(pointer)) }
    public var nextUpdate: Date? { X509_CRL_get0_nextUpdate(pointer).map { date($0) } }

    public var revokedSerials: [SerialNumber] {
        guard let stack = X509_CRL_get_REVOKED(pointer) else { return [] }
        return (0..<OPENSSL_sk_num(stack)).compactMap { index in
            guard let raw = OPENSSL_sk_value(stack, index) else { return nil }
            let revoked = OpaquePointer(raw)
            return X509_REVOKED_get0_serialNumber(revoked).map { SerialNumber(bytes: asn1StringBytes($0)) }
        }
    }

    public func isSigned(by issuer: Certificate) -> Bool {
        guard let key = X509_get0_pubkey(issuer.pointer) else { return false }
        return X509_CRL_verify(pointer, key) == 1
    }
}

private func fill(_ revoked: OpaquePointer, _ entry: CertificateRevocationList.Entry) throws {
    try withInteger(entry.serial.bytes) { try check(X509_REVOKED_set_serialNumber(revoked, $0), "X509_REVOKED_set_serialNumber") }
    try withTime(entry.revokedAt) { try check(X509_REVOKED_set_revocationDate(revoked, $0), "X509_REVOKED_set_revocationDate") }
    guard let reasonCode = entry.reasonCode else { return }
    let reason = try checkNotNil(ASN1_ENUMERATED_new(), "ASN1_ENUMERATED_new")
    defer { ASN1_ENUMERATED_free(reason) }
    try check(ASN1_ENUMERATED_set(reason, reasonCode), "ASN1_ENUMERATED_set")
    try check(X509_REVOKED_add1_ext_i2d(revoked, NID_crl_reason, UnsafeMutableRawPointer(reason), 0, 0), "add CRL reason")
}

private func bigEndian(_ number: Int) -> [UInt8] {
    var value = UInt64(max(0, number))
    var bytes: [UInt8] = []
    repeat {
        bytes.insert(UInt8(value & 0xFF), at: 0)
        value >>= 8
    } while value > 0
    return bytes
}

private func withTime<T>(_ date: Date, _ body: (UnsafeMutablePointer<ASN1_TIME>) throws -> T) throws -> T {
    let time = try checkNotNil(ASN1_TIME_set(nil, time_t(date.timeIntervalSince1970.rounded(.down))), "ASN1_TIME_set")
    defer { ASN1_TIME_free(time) }
    return try body(time)
}

private func withInteger<T>(_ bytes: [UInt8], _ body: (UnsafeMutablePointer<ASN1_INTEGER>) throws -> T) throws -> T {
    let number = try checkNotNil(BN_bin2bn(bytes, Int32(bytes.count), nil), "BN_bin2bn")
    defer { BN_free(number) }
    let integer = try checkNotNil(BN_to_ASN1_INTEGER(number, nil), "BN_to_ASN1_INTEGER")
    defer { ASN1_INTEGER_free(integer) }
    return try body(integer)
}
