import Foundation

/// A certificate serial number: big-endian, positive, as SPEC §3 wants it — random, 18 octets
/// (inside the 16–20 range), top bit clear so DER needs no sign byte.
public struct SerialNumber: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        var trimmed = bytes[...]
        while trimmed.count > 1, trimmed.first == 0 { trimmed = trimmed.dropFirst() }
        self.bytes = Array(trimmed)
    }

    public static let length = 18

    /// A serial from `length` random octets (see `random()` in ChpkiOpenSSL, which draws them):
    /// the first octet is forced to 0x01–0x7F so the encoding is exactly `length` octets.
    public init(randomOctets bytes: [UInt8]) {
        var bytes = bytes
        bytes[0] = bytes[0] & 0x7F
        if bytes[0] == 0 { bytes[0] = 0x01 }
        self.init(bytes: bytes)
    }

    /// Parses hex as `openssl` prints it, with or without colons and `0x`. ASCII digits only:
    /// `isHexDigit` also holds for fullwidth `０`-`９` and `Ａ`-`Ｆ`, which `UInt8(_:radix:)` refuses.
    /// Hex digits in either case, `:` separators anywhere, an optional `0x`; at most 42 digits.
    /// Read byte by byte: every row of ca.db is named by its serial, 10,000 of them per index.txt.
    public init?(hex: String) {
        var nibbles: [UInt8] = []
        nibbles.reserveCapacity(hex.utf8.count)
        for byte in hex.utf8 where byte != UInt8(ascii: ":") {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibbles.append(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibbles.append(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibbles.append(byte - UInt8(ascii: "A") + 10)
            // "0x" or "0X" before the digits: kept as a marker, checked below.
            case UInt8(ascii: "x"), UInt8(ascii: "X"): nibbles.append(0xFF)
            default: return nil
            }
        }
        if nibbles.count >= 2, nibbles[0] == 0, nibbles[1] == 0xFF { nibbles.removeFirst(2) }
        guard !nibbles.isEmpty, nibbles.count <= 42, !nibbles.contains(0xFF) else { return nil }
        if nibbles.count % 2 == 1 { nibbles.insert(0, at: 0) }
        self.init(bytes: stride(from: 0, to: nibbles.count, by: 2).map { nibbles[$0] << 4 | nibbles[$0 + 1] })
    }

    /// Upper-case hex, even length, no separators: the form `index.txt` and `chpki list` use.
    public var hex: String { Hex.upper(bytes) }
    public var description: String { hex }

    public static func < (lhs: SerialNumber, rhs: SerialNumber) -> Bool {
        lhs.bytes.count != rhs.bytes.count ? lhs.bytes.count < rhs.bytes.count : lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}
