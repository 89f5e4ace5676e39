import ChpkiBase
import ChpkiModel

extension SerialNumber {
    /// A fresh random serial from OpenSSL's CSPRNG; the first octet is 0x01–0x7F so the encoding is
    /// exactly `length` octets (`init(randomOctets:)`).
    public static func random() throws -> SerialNumber {
        SerialNumber(randomOctets: try randomBytes(length))
    }
}
