import Foundation

/// A passphrase held as bytes, never printed: `description` is redacted so it cannot end up in a
/// log line or an error message by accident.
public struct Passphrase: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public let bytes: [UInt8]

    /// Refuses an empty passphrase or one with a NUL byte (OpenSSL takes passphrases as C strings).
    public init(bytes: [UInt8], source: String) throws {
        guard !bytes.isEmpty else { throw ChpkiError.input(file: nil, field: source, "the passphrase is empty") }
        guard !bytes.contains(0) else { throw ChpkiError.input(file: nil, field: source, "the passphrase contains a NUL byte") }
        self.bytes = bytes
    }

    public var description: String { "<passphrase>" }
    public var debugDescription: String { "<passphrase>" }

    /// Runs `body` with the passphrase as a NUL-terminated C string.
    func withCString<T>(_ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        var buffer = bytes.map { CChar(bitPattern: $0) }
        buffer.append(0)
        defer { for index in buffer.indices { buffer[index] = 0 } }
        return try buffer.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }
}
