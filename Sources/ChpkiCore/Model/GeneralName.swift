import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A subjectAltName entry or a name-constraint base, as chpki reads and writes them.
public enum GeneralName: Sendable, Hashable, CustomStringConvertible {
    case dns(String)
    /// 4 or 16 octets.
    case ip([UInt8])
    /// Name constraints only: an address and a mask of the same length.
    case ipNetwork(address: [UInt8], mask: [UInt8])
    case email(String)
    case uri(String)
    /// Anything else, as OpenSSL prints it.
    case other(String)

    /// `DNS:name`, `IP:10.0.0.1`, `IP:10.0.0.0/24`: the forms `openssl x509 -text` and operators use.
    public var description: String {
        switch self {
        case let .dns(name): return "DNS:\(name)"
        case let .ip(bytes): return "IP:\(Self.formatAddress(bytes))"
        case let .ipNetwork(address, mask):
            let prefix = mask.reduce(0) { $0 + $1.nonzeroBitCount }
            return "IP:\(Self.formatAddress(address))/\(prefix)"
        case let .email(address): return "email:\(address)"
        case let .uri(uri): return "URI:\(uri)"
        case let .other(text): return text
        }
    }

    /// A network for a name constraint: the first `prefixLength` bits of `address`.
    public static func network(containing address: [UInt8], prefixLength: Int) -> GeneralName {
        var mask = [UInt8](repeating: 0, count: address.count)
        for bit in 0..<min(prefixLength, address.count * 8) { mask[bit / 8] |= 0x80 >> UInt8(bit % 8) }
        let network = zip(address, mask).map { $0 & $1 }
        return .ipNetwork(address: network, mask: mask)
    }

    /// inet_ntop's canonical text for 4 or 16 octets. Any other length comes from a malformed
    /// certificate and is shown as its length, as openssl does: inet_ntop would read 4 or 16
    /// bytes whatever the buffer holds.
    public static func formatAddress(_ bytes: [UInt8]) -> String {
        guard bytes.count == 4 || bytes.count == 16 else { return "<invalid length=\(bytes.count)>" }
        let family = bytes.count == 16 ? AF_INET6 : AF_INET
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let result = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count))
        }
        guard result != nil else { return bytes.map { String($0) }.joined(separator: ".") }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The nameConstraints extension: permitted and excluded subtrees.
public struct NameConstraints: Sendable, Equatable {
    public var permitted: [GeneralName]
    public var excluded: [GeneralName]

    public init(permitted: [GeneralName], excluded: [GeneralName] = []) {
        self.permitted = permitted
        self.excluded = excluded
    }
}
