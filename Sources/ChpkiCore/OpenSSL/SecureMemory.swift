internal import CChpkiOpenSSL

/// Wipes memory that held a secret with OPENSSL_cleanse, which the compiler may not optimise away.
public enum SecureMemory {
    public static func cleanse(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        OPENSSL_cleanse(base, buffer.count)
    }

    public static func cleanse(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { cleanse($0) }
    }
}
