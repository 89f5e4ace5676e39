import Foundation

/// Bytes of a secret (a key PEM, a data key) in memory of their own, wiped with explicit_bzero
/// (`SecureMemory`) when the last reference goes: unlike an Array, a Data or a String, nothing
/// copies them behind our back, and nothing regrows them into a new buffer leaving the old one.
public final class SecretBytes: @unchecked Sendable, Equatable {
    /// The whole allocation (at least `count` bytes): all of it is wiped on release.
    private let buffer: UnsafeMutableRawBufferPointer

    /// Called by `deinit` with the whole allocation after it is wiped and before it is freed: a
    /// unit test's way to see the wipe (set it once, before the last reference goes).
    package var releaseProbe: ((UnsafeRawBufferPointer) -> Void)?

    public init(count: Int) {
        buffer = .allocate(byteCount: max(count, 1), alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        self.count = count
    }

    /// A buffer of `capacity` bytes that `fill` writes and returns how many it wrote: for bytes
    /// whose length is known only once they are made (a compressor's output). The whole capacity
    /// is wiped on release, and at once if `fill` throws.
    package init(capacity: Int, filling fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(capacity, 1), alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        let filled: Int
        do {
            filled = try fill(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<capacity]))
        } catch {
            SecureMemory.cleanse(buffer)
            buffer.deallocate()
            throw error
        }
        precondition((0...capacity).contains(filled), "SecretBytes: filled \(filled) of \(capacity) bytes")
        self.buffer = buffer
        self.count = filled
    }

    /// `parts` one after the other, copied straight into wiped memory (a chain and its key in one file).
    package convenience init(concatenating parts: [UnsafeRawBufferPointer]) {
        let total = parts.reduce(0) { $0 + $1.count }
        try! self.init(capacity: total) { buffer in
            var offset = 0
            for part in parts where part.count > 0 {
                UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + part.count]).copyMemory(from: part)
                offset += part.count
            }
            return offset
        }
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
        releaseProbe?(UnsafeRawBufferPointer(buffer))
        buffer.deallocate()
    }
}
