import Glibc

/// Wipes memory that held a secret with glibc's explicit_bzero(3), which the compiler may not
/// optimise away (as OPENSSL_cleanse; here so that the layers below the OpenSSL wrapper can wipe).
public enum SecureMemory {
    public static func cleanse(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        explicit_bzero(base, buffer.count)
    }

    public static func cleanse(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { cleanse($0) }
    }
}
