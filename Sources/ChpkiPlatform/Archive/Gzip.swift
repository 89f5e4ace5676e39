import Foundation
internal import CChpkiZlib
import ChpkiBase

/// gzip (RFC 1952) through zlib, for archives that `tar -xzf` opens.
public enum Gzip {
    public static func compress(_ data: Data, level: Int32 = 6) throws -> Data {
        var stream = z_stream()
        guard chpki_gzip_deflate_init(&stream, level) == Z_OK else { throw ChpkiError(.internalBug, "gzip: cannot initialise zlib") }
        defer { deflateEnd(&stream) }
        return try run(&stream, input: data) { deflate(&$0, Z_FINISH) }
    }

    /// The same gzip of an archive that holds private keys, kept out of memory that outlives the
    /// call: the input is read in place, the output goes to one wiped buffer of `deflateBound`'s
    /// size (one `deflate` call, so no regrowth leaves a copy), and zlib's working memory (its
    /// window and pending output hold the input's bytes) is wiped before zlib frees it. The bytes
    /// are those of `compress(_: Data)`: deflate's output does not depend on how it is drained.
    public static func compress(_ input: SecretBytes, level: Int32 = 6) throws -> SecretBytes {
        var stream = z_stream()
        wipeWorkingMemory(of: &stream)
        guard chpki_gzip_deflate_init(&stream, level) == Z_OK else { throw ChpkiError(.internalBug, "gzip: cannot initialise zlib") }
        defer { deflateEnd(&stream) }
        return try input.withBytes { raw in
            guard raw.count <= Int(uInt.max) else { throw ChpkiError(.archiveTooLarge, "gzip: the input is larger than zlib takes in one call") }
            let bound = Int(deflateBound(&stream, uLong(raw.count)))
            return try SecretBytes(capacity: bound) { out in
                stream.next_in = UnsafeMutablePointer(mutating: raw.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(raw.count)
                stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(out.count)
                let status = deflate(&stream, Z_FINISH)
                guard status == Z_STREAM_END else { throw ChpkiError(.internalBug, "gzip: deflate gave \(status) with an output buffer of deflateBound's size") }
                return out.count - Int(stream.avail_out)
            }
        }
    }

    /// zlib's allocator for `stream`, with a free that wipes each block first (each block carries
    /// its size in front of it: zlib's free does not pass one).
    private static func wipeWorkingMemory(of stream: inout z_stream) {
        stream.zalloc = { _, items, size in
            let (bytes, overflow) = Int(items).multipliedReportingOverflow(by: Int(size))
            guard !overflow, bytes <= Int.max - 16, let base = malloc(bytes + 16) else { return nil }
            base.storeBytes(of: bytes, as: Int.self)
            return base + 16
        }
        stream.zfree = { _, address in
            guard let address else { return }
            let base = address - 16
            SecureMemory.cleanse(UnsafeMutableRawBufferPointer(start: address, count: base.load(as: Int.self)))
            free(base)
        }
    }

    /// Refuses truncated or corrupt input instead of returning what could be read, output past
    /// `limit` bytes (a decompression bomb stops there, not at the end of memory), and bytes after
    /// the gzip member (a second member or trailing garbage: nothing chpki writes has them).
    public static func decompress(_ data: Data, limit: Int = 1 << 30) throws -> Data {
        var stream = z_stream()
        guard chpki_gzip_inflate_init(&stream) == Z_OK else { throw ChpkiError(.internalBug, "gzip: cannot initialise zlib") }
        defer { inflateEnd(&stream) }
        let output = try run(&stream, input: data, limit: limit) { inflate(&$0, Z_NO_FLUSH) }
        guard stream.avail_in == 0 else { throw ChpkiError(.archiveCorrupt, "gzip: \(stream.avail_in) bytes after the end of the compressed data") }
        return output
    }

    private static func run(_ stream: inout z_stream, input: Data, limit: Int = Int.max,
                            step: (inout z_stream) -> Int32) throws -> Data {
        var output = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        guard input.count <= Int(uInt.max) else { throw ChpkiError(.archiveTooLarge, "gzip: the input is larger than zlib takes in one call") }
        var input = [UInt8](input)
        let inputCount = input.count
        return try input.withUnsafeMutableBufferPointer { inputBuffer in
            stream.next_in = inputBuffer.baseAddress
            stream.avail_in = uInt(inputCount)
            while true {
                let (status, produced) = buffer.withUnsafeMutableBufferPointer { outputBuffer -> (Int32, Int) in
                    stream.next_out = outputBuffer.baseAddress
                    stream.avail_out = uInt(outputBuffer.count)
                    let status = step(&stream)
                    return (status, outputBuffer.count - Int(stream.avail_out))
                }
                guard produced <= limit - output.count else { throw ChpkiError(.archiveTooLarge, "gzip: the archive expands past \(limit) bytes") }
                output.append(contentsOf: buffer[..<produced])
                switch status {
                case Z_STREAM_END: return output
                case Z_OK: continue
                case Z_BUF_ERROR where produced > 0: continue
                case Z_BUF_ERROR: throw ChpkiError(.archiveTruncated, "gzip: the archive is truncated")
                default: throw ChpkiError(.archiveCorrupt, "gzip: the archive is corrupt (zlib \(status))")
                }
            }
        }
    }
}
