import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// scrypt (RFC 7914) through EVP_KDF: turns the CA passphrase into the key that wraps the leaf-key
/// data key. The parameters travel with the wrapped key, so they can be raised later.
public enum Scrypt {
    public struct Parameters: Codable, Sendable, Equatable {
        public var n: UInt64
        public var r: UInt32
        public var p: UInt32

        /// 32 MiB and about 0.1 s on this class of machine: paid once per run.
        public static let `default` = Parameters(n: 32768, r: 8, p: 1)
        /// What chpki accepts from a stored record: no cheaper than RFC 7914's interactive example,
        /// no more memory than 1 GiB (a hostile ca.db must not exhaust memory).
        public var isAcceptable: Bool {
            n >= 16384 && n <= (1 << 20) && n & (n - 1) == 0 && (1...16).contains(r) && (1...16).contains(p)
                && 128 * UInt64(r) * n <= (1 << 30)
        }
    }

    public static func derive(passphrase: Passphrase, salt: [UInt8], parameters: Parameters, length: Int) throws -> SecretBytes {
        guard parameters.isAcceptable else { throw OpenSSLError(operation: "scrypt parameters out of range", reasons: []) }
        let output = SecretBytes(count: length)
        try passphrase.withBytes { password in
            try output.withMutableBytes { out in
                try check(chpki_scrypt(password.bindMemory(to: UInt8.self).baseAddress, password.count, salt, salt.count,
                                       parameters.n, parameters.r, parameters.p, UInt64(1 << 30) + (1 << 24),
                                       out.bindMemory(to: UInt8.self).baseAddress, out.count), "scrypt")
            }
        }
        return output
    }
}
