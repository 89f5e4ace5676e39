/// Upper-case hexadecimal, as OpenSSL prints serials and fingerprints (`String(format:)` is far too
/// slow for thousands of certificates).
public enum Hex {
    private static let digits = Array("0123456789ABCDEF".utf8)

    public static func upper(_ bytes: [UInt8], separator: UInt8? = nil) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 3)
        for (index, byte) in bytes.enumerated() {
            if let separator, index > 0 { out.append(separator) }
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
