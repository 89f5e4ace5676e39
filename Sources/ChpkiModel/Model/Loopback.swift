/// Loopback (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3): all of 127.0.0.0/8, and ::1. The one place that
/// says so: the SANs every server certificate carries, the networks name constraints permit, and
/// the bundle snippets that must not bind loopback twice all read it here.
extension IPAddress {
    /// The IPv4 loopback address SANs carry.
    public static let loopbackV4 = IPAddress(bytes: [127, 0, 0, 1])!
    /// The IPv6 loopback address.
    public static let loopbackV6 = IPAddress(bytes: [UInt8](repeating: 0, count: 15) + [1])!
    /// The loopback networks as (address, prefix length): 127.0.0.0/8 and ::1/128.
    public static let loopbackNetworks: [(address: IPAddress, prefixLength: Int)] = [(loopbackV4, 8), (loopbackV6, 128)]

    /// Whether this address is loopback: any of 127.0.0.0/8, or ::1 (not only 127.0.0.1).
    public var isLoopback: Bool {
        isV6 ? self == Self.loopbackV6 : bytes[0] == 127
    }
}
