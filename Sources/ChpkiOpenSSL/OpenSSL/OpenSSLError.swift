internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// A failed OpenSSL call, carrying what chpki was doing and OpenSSL's own error queue,
/// drained at the failing call (the queue is per thread).
public struct OpenSSLError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let reasons: [String]

    public var description: String {
        reasons.isEmpty ? operation : "\(operation): \(reasons.joined(separator: "; "))"
    }

    /// Reads and clears the calling thread's OpenSSL error queue.
    static func drain(_ operation: String) -> OpenSSLError {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let text = cString(buffer)
            // "error:1E08010C:DECODER routines::unsupported" -> keep the readable tail.
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            reasons.append(parts.count >= 5 ? parts[4...].joined(separator: ":") : text)
        }
        return OpenSSLError(operation: operation, reasons: reasons)
    }

    /// True when the queue said the passphrase did not decrypt the key.
    public var isBadDecrypt: Bool {
        reasons.contains { $0.contains("bad decrypt") || $0.contains("cipherfinal error") || $0.contains("bad password") }
    }
}

/// Throws the drained error queue unless `result` is 1 (OpenSSL's success).
@inline(__always)
func check(_ result: Int32, _ operation: @autoclosure () -> String) throws {
    guard result == 1 else { throw OpenSSLError.drain(operation()) }
}

/// Unwraps a pointer an OpenSSL constructor returned, or throws the drained error queue.
@inline(__always)
func checkNotNil<T>(_ value: T?, _ operation: @autoclosure () -> String) throws -> T {
    guard let value else { throw OpenSSLError.drain(operation()) }
    return value
}
