import Foundation

/// A passphrase held in wiped-on-release memory (`SecretBytes`), never printed: `description` is
/// redacted so it cannot end up in a log line or an error message by accident.
public struct Passphrase: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    private let storage: SecretBytes

    /// Refuses an empty passphrase or one with a NUL byte (OpenSSL takes passphrases as C strings).
    /// Wipes `bytes` once copied.
    public init(bytes: [UInt8], source: String) throws {
        var bytes = bytes
        defer { SecureMemory.cleanse(&bytes) }
        guard !bytes.isEmpty else { throw ChpkiError.input(.passphraseInvalid, file: nil, field: source, "the passphrase is empty") }
        guard !bytes.contains(0) else { throw ChpkiError.input(.passphraseInvalid, file: nil, field: source, "the passphrase contains a NUL byte") }
        storage = SecretBytes(bytes)
    }

    public var count: Int { storage.count }

    /// A copy as an array, for APIs that need one; prefer `withBytes`.
    public var bytes: [UInt8] { storage.withBytes { Array($0) } }

    public func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try storage.withBytes(body)
    }

    public static func == (lhs: Passphrase, rhs: Passphrase) -> Bool { lhs.storage == rhs.storage }

    public var description: String { "<passphrase>" }
    public var debugDescription: String { "<passphrase>" }

    /// Runs `body` with the passphrase as a NUL-terminated C string (wiped afterwards).
    package func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        var buffer = storage.withBytes { $0.map { CChar(bitPattern: $0) } }
        buffer.append(0)
        defer { buffer.withUnsafeMutableBytes { SecureMemory.cleanse($0) } }
        return try buffer.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }
}
