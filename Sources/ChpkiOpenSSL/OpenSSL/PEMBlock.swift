import Foundation
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// One `-----BEGIN LABEL-----` block of a PEM file, decoded by OpenSSL's PEM reader.
public struct PEMBlock: Sendable, Equatable {
    public var label: String
    public var der: Data

    package init(label: String, der: Data) {
        self.label = label
        self.der = der
    }

    /// Every PEM block in `data`, in order. Text outside blocks (comments, `openssl x509 -text`) is skipped.
    public static func all(in data: Data) throws -> [PEMBlock] {
        try MemoryBIO.reading(data) { bio in
            var blocks: [PEMBlock] = []
            while true {
                var name: UnsafeMutablePointer<CChar>?
                var header: UnsafeMutablePointer<CChar>?
                var body: UnsafeMutablePointer<UInt8>?
                var length = 0
                guard PEM_read_bio(bio, &name, &header, &body, &length) == 1 else {
                    ERR_clear_error()  // "no start line" marks the end of input
                    break
                }
                defer {
                    chpki_free(name)
                    chpki_free(header)
                    chpki_free(body)
                }
                let label = name.map { String(cString: $0) } ?? ""
                blocks.append(PEMBlock(label: label, der: body.map { Data(bytes: $0, count: length) } ?? Data()))
            }
            return blocks
        }
    }
}
