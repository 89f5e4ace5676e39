import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// Scoped memory BIOs: the only way the rest of the OpenSSL layer moves bytes in and out of OpenSSL.
enum MemoryBIO {
    /// Runs `body` with a read-only BIO over `data`; the BIO never outlives the call.
    static func reading<T>(_ data: Data, _ body: (OpaquePointer) throws -> T) throws -> T {
        try data.withUnsafeBytes { raw in
            let bio = try checkNotNil(BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)), "BIO_new_mem_buf")
            defer { BIO_free(bio) }
            return try body(bio)
        }
    }

    /// Runs `body` with an empty writable BIO and returns what it wrote.
    static func writing(_ body: (OpaquePointer) throws -> Void) throws -> Data {
        let bio = try checkNotNil(BIO_new(BIO_s_mem()), "BIO_new")
        defer { BIO_free(bio) }
        try body(bio)
        var pointer: UnsafeMutablePointer<CChar>?
        let length = chpki_bio_mem_data(bio, &pointer)
        guard let pointer, length > 0 else { return Data() }
        return Data(bytes: pointer, count: length)
    }

    static func writingString(_ body: (OpaquePointer) throws -> Void) throws -> String {
        String(decoding: try writing(body), as: UTF8.self)
    }
}

/// Copies the DER encoding an `i2d_*` function produces.
func derEncode(_ operation: String, _ i2d: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32) throws -> Data {
    let length = i2d(nil)
    guard length > 0 else { throw OpenSSLError.drain(operation) }
    var data = Data(count: Int(length))
    let written = data.withUnsafeMutableBytes { raw -> Int32 in
        var cursor: UnsafeMutablePointer<UInt8>? = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
        return i2d(&cursor)
    }
    guard written == length else { throw OpenSSLError.drain(operation) }
    return data
}

/// Bytes of an ASN1_STRING (OCTET STRING, IA5String, ...).
func asn1StringBytes(_ string: UnsafePointer<ASN1_STRING>?) -> [UInt8] {
    guard let string, let data = ASN1_STRING_get0_data(string) else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(string))))
}

func asn1StringText(_ string: UnsafePointer<ASN1_STRING>?) -> String {
    String(decoding: asn1StringBytes(string), as: UTF8.self)
}

/// OpenSSL's short or dotted name for an object identifier.
func objectName(_ object: OpaquePointer?) -> String {
    guard let object else { return "" }
    let nid = OBJ_obj2nid(object)
    if nid != NID_undef, let name = OBJ_nid2sn(nid) { return String(cString: name) }
    var buffer = [CChar](repeating: 0, count: 128)
    let length = OBJ_obj2txt(&buffer, Int32(buffer.count), object, 1)
    return length > 0 ? cString(buffer) : ""
}

/// A NUL-terminated C buffer as a Swift string.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
