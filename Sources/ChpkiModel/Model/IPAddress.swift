/// An IPv4 or IPv6 address as written in `cluster.yml` and carried into iPAddress SANs and name constraints.
///
/// Parsing is strict and platform-independent (no `inet_pton` quirks): IPv4 is exactly four decimal
/// octets without leading zeros; IPv6 is RFC 4291 text (one `::` at most, an optional trailing dotted
/// quad). Prefix lengths (`/24`), zone ids (`%eth0`), brackets and surrounding spaces are rejected.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// Network-order bytes: 4 for IPv4, 16 for IPv6 (the form an iPAddress SAN carries).
    public let bytes: [UInt8]

    public var isV6: Bool { bytes.count == 16 }

    /// Parses the textual form; nil when it is not a plain IPv4 or IPv6 address.
    public init?(_ text: String) {
        if let v4 = IPAddress.parseV4(Substring(text)) {
            bytes = v4
        } else if let v6 = IPAddress.parseV6(text) {
            bytes = v6
        } else {
            return nil
        }
    }

    /// Wraps raw bytes (4 or 16 of them); nil for any other length.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Why `text` is not an address, for error messages; nil when it is one.
    public static func problem(with text: String) -> String? {
        if IPAddress(text) != nil { return nil }
        if text.contains("/") { return "'\(text)' is not an IP address: write the address without a /prefix length" }
        if text.contains("%") { return "'\(text)' is not an IP address: zone ids (%...) are not allowed" }
        if text.hasPrefix("[") { return "'\(text)' is not an IP address: write IPv6 addresses without brackets" }
        if text.contains(".") && !text.contains(":") {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            let numeric = parts.allSatisfy { !$0.isEmpty && $0.unicodeScalars.allSatisfy { $0 >= "0" && $0 <= "9" } }
            if parts.count == 4, numeric, parts.contains(where: { $0.count > 1 && $0.first == "0" }) {
                return "'\(text)' is not an IP address: IPv4 octets must not have leading zeros"
            }
            return "'\(text)' is not an IPv4 address: expected four numbers 0-255 separated by dots"
        }
        return "'\(text)' is not an IP address: expected IPv4 (10.0.0.1) or IPv6 (2001:db8::1)"
    }

    /// Canonical text: dotted quad for IPv4, RFC 5952 for IPv6 (lower case, longest run of two or
    /// more zero groups compressed, `::ffff:a.b.c.d` for IPv4-mapped addresses).
    public var description: String {
        if !isV6 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [Int] = []
        for index in stride(from: 0, to: 16, by: 2) {
            groups.append(Int(bytes[index]) << 8 | Int(bytes[index + 1]))
        }
        if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xffff {
            return "::ffff:" + bytes[12..<16].map(String.init).joined(separator: ".")
        }
        // Longest run of zero groups (length >= 2), first one on a tie.
        var bestStart = -1, bestLength = 0, runStart = -1
        for index in 0...8 {
            if index < 8 && groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                let length = index - runStart
                if length > bestLength { bestStart = runStart; bestLength = length }
                runStart = -1
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard bestLength >= 2 else { return hex.joined(separator: ":") }
        let head = hex[0..<bestStart].joined(separator: ":")
        let tail = hex[(bestStart + bestLength)...].joined(separator: ":")
        return head + "::" + tail
    }

    /// IPv4 before IPv6, then by bytes: a stable order for SAN lists and reports.
    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.bytes.count != rhs.bytes.count { return lhs.bytes.count < rhs.bytes.count }
        return lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }

    // MARK: - Parsing

    private static func parseV4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3,
                  part.unicodeScalars.allSatisfy({ $0 >= "0" && $0 <= "9" }) else { return nil }
            if part.count > 1 && part.first == "0" { return nil }
            guard let value = Int(part), value <= 255 else { return nil }
            result.append(UInt8(value))
        }
        return result
    }

    private static func parseV6(_ text: String) -> [UInt8]? {
        guard text.contains(":"), text.unicodeScalars.allSatisfy({ $0.isASCII }) else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }

        // Parses one side of `::` into 16-bit groups; `allowV4Tail` for the side that ends the address.
        func groups(_ part: String, allowV4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            var out: [UInt16] = []
            for (index, field) in fields.enumerated() {
                if allowV4Tail && index == fields.count - 1 && field.contains(".") {
                    guard let v4 = parseV4(field) else { return nil }
                    out.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    out.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard (1...4).contains(field.count), field.allSatisfy(\.isHexDigit),
                      let value = UInt16(field, radix: 16) else { return nil }
                out.append(value)
            }
            return out
        }

        let words: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowV4Tail: false),
                  let tail = groups(halves[1], allowV4Tail: true),
                  head.count + tail.count <= 7 else { return nil }
            words = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let all = groups(text, allowV4Tail: true), all.count == 8 else { return nil }
            words = all
        }
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }
}
