import Foundation
internal import CChpkiZlib

/// gzip (RFC 1952) through zlib, for archives that `tar -xzf` opens.
public enum Gzip {
    public static func compress(_ data: Data, level: Int32 = 6) throws -> Data {
        var stream = z_stream()
        guard chpki_gzip_deflate_init(&stream, level) == Z_OK else { throw ChpkiError(.refused, "gzip: cannot initialise zlib") }
        defer { deflateEnd(&stream) }
        return try run(&stream, input: data) { deflate(&$0, Z_FINISH) }
    }

    /// Refuses truncated or corrupt input instead of returning what could be read.
    public static func decompress(_ data: Data, limit: Int = 1 << 30) throws -> Data {
        var stream = z_stream()
        guard chpki_gzip_inflate_init(&stream) == Z_OK else { throw ChpkiError(.refused, "gzip: cannot initialise zlib") }
        defer { inflateEnd(&stream) }
        return try run(&stream, input: data, limit: limit) { inflate(&$0, Z_NO_FLUSH) }
    }

    private static func run(_ stream: inout z_stream, input: Data, limit: Int = Int.max,
                            step: (inout z_stream) -> Int32) throws -> Data {
        var output = Data()
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
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
                output.append(contentsOf: buffer[..<produced])
                guard output.count <= limit else { throw ChpkiError(.refused, "gzip: the archive expands past \(limit) bytes") }
                switch status {
                case Z_STREAM_END: return output
                case Z_OK: continue
                case Z_BUF_ERROR where produced > 0: continue
                case Z_BUF_ERROR: throw ChpkiError(.refused, "gzip: the archive is truncated")
                default: throw ChpkiError(.refused, "gzip: the archive is corrupt (zlib \(status))")
                }
            }
        }
    }
}
