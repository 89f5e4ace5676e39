/// keyUsage bits chpki sets (RFC 5280 §4.2.1.3).
public struct KeyUsage: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let digitalSignature = KeyUsage(rawValue: 1 << 0)
    public static let keyEncipherment = KeyUsage(rawValue: 1 << 1)
    public static let keyAgreement = KeyUsage(rawValue: 1 << 2)
    public static let keyCertSign = KeyUsage(rawValue: 1 << 3)
    public static let cRLSign = KeyUsage(rawValue: 1 << 4)

    /// Names as OpenSSL's extension config and `x509 -text` spell them, in that order.
    package static let names: [(KeyUsage, String)] = [
        (.digitalSignature, "digitalSignature"), (.keyEncipherment, "keyEncipherment"),
        (.keyAgreement, "keyAgreement"), (.keyCertSign, "keyCertSign"), (.cRLSign, "cRLSign"),
    ]

    public var names: [String] { Self.names.filter { contains($0.0) }.map(\.1) }
}

/// extendedKeyUsage purposes chpki issues.
public enum ExtendedKeyUsage: String, Sendable, Hashable, CaseIterable {
    case serverAuth
    case clientAuth
}
