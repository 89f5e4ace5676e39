import Foundation

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

    /// The one text form of an address (`IPAddress.description`: RFC 5952 for IPv6). Any length
    /// but 4 or 16 octets comes from a malformed certificate and is shown as its length, as
    /// openssl does (inet_ntop once read 4 bytes of a shorter SAN: a heap over-read in `inspect`).
    public static func formatAddress(_ bytes: [UInt8]) -> String {
        IPAddress(bytes: bytes)?.description ?? "<invalid length=\(bytes.count)>"
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
