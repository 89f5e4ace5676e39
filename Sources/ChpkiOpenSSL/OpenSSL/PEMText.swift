internal import CChpkiOpenSSL
import ChpkiBase

/// PEM (RFC 7468) byte for byte as OpenSSL's PEM writers produce it: the BEGIN line, the DER in
/// base64 lines of 64 characters, the END line. The base64 is OpenSSL's (`EVP_EncodeBlock`, one
/// 48-byte line at a time); the text goes straight into its destination, without a BIO: a
/// certificate's into a String, a private key's into wiped memory.
enum PEMText {
    /// A certificate, CRL or other public object.
    static func text(label: String, der: UnsafeRawBufferPointer) -> String {
        let count = length(label: label, derCount: der.count)
        return String(unsafeUninitializedCapacity: count) { out in
            write(label: label, der: der, into: UnsafeMutableRawBufferPointer(out))
            return count
        }
    }

    /// A private key: the text only ever exists in wiped memory.
    static func secret(label: String, der: UnsafeRawBufferPointer) -> SecretBytes {
        let result = SecretBytes(count: length(label: label, derCount: der.count))
        result.withMutableBytes { write(label: label, der: der, into: $0) }
        return result
    }

    private static func length(label: String, derCount: Int) -> Int {
        let encoded = (derCount + 2) / 3 * 4
        return header(label).count + encoded + (encoded + 63) / 64 + footer(label).count
    }

    private static func header(_ label: String) -> String.UTF8View { "-----BEGIN \(label)-----\n".utf8 }
    private static func footer(_ label: String) -> String.UTF8View { "-----END \(label)-----\n".utf8 }

    /// Fills `out`, exactly `length(label:derCount:)` bytes. EVP_EncodeBlock ends each line with a
    /// NUL, which lands where that line's newline then goes.
    private static func write(label: String, der: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        var end = 0
        for byte in header(label) { out[end] = byte; end += 1 }
        let input = der.bindMemory(to: UInt8.self)
        let output = out.bindMemory(to: UInt8.self)
        for start in stride(from: 0, to: der.count, by: 48) {
            end += Int(EVP_EncodeBlock(output.baseAddress! + end, input.baseAddress! + start, Int32(min(48, der.count - start))))
            out[end] = 0x0A
            end += 1
        }
        for byte in footer(label) { out[end] = byte; end += 1 }
    }
}
