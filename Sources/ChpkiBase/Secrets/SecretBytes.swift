import Foundation

/// Bytes of a secret (a key PEM, a data key) in memory of their own, wiped with OPENSSL_cleanse
/// when the last reference goes: unlike an Array or a String, nothing copies them behind our back.
public final class SecretBytes: @unchecked Sendable {
    private let buffer: UnsafeMutableRawBufferPointer

    public init(count: Int) {
        buffer = .allocate(byteCount: max(count, 1), alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        self.count = count
    }

    public convenience init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        self.init(count: bytes.count)
        _ = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes.count]).initializeMemory(as: UInt8.self, from: bytes)
    }

    /// Takes the bytes of `data` and wipes `data`'s own storage.
    public convenience init(consuming data: inout Data) {
        self.init(data)
        data.withUnsafeMutableBytes { SecureMemory.cleanse($0) }
        data = Data()
    }

    public let count: Int

    public func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }

    /// Only for filling a fresh buffer (a decryption's output).
    package func withMutableBytes<T>(_ body: (UnsafeMutableRawBufferPointer) throws -> T) rethrows -> T {
        try body(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]))
    }

    /// A copy as Data, for an API that needs one (e.g. a file write); wipe it when done if you can.
    public var data: Data { withBytes { Data($0) } }

    public static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        lhs.withBytes { a in rhs.withBytes { b in a.elementsEqual(b) } }
    }

    deinit {
        SecureMemory.cleanse(buffer)
        buffer.deallocate()
    }
}
