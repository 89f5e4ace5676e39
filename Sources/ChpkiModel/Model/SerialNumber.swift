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
    public init?(hex: String) {
        var digits = hex.lowercased().replacingOccurrences(of: ":", with: "")
        if digits.hasPrefix("0x") { digits.removeFirst(2) }
        guard !digits.isEmpty, digits.count <= 42, digits.allSatisfy({ $0.isASCII && $0.isHexDigit }) else { return nil }
        if digits.count % 2 == 1 { digits = "0" + digits }
        var bytes: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            bytes.append(UInt8(digits[index..<next], radix: 16)!)
            index = next
        }
        self.init(bytes: bytes)
    }

    /// Upper-case hex, even length, no separators: the form `index.txt` and `chpki list` use.
    public var hex: String { Hex.upper(bytes) }
    public var description: String { hex }

    public static func < (lhs: SerialNumber, rhs: SerialNumber) -> Bool {
        lhs.bytes.count != rhs.bytes.count ? lhs.bytes.count < rhs.bytes.count : lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}
