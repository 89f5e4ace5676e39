import Foundation
import ChpkiBase

/// A file named by the operator (inventory, passphrase file, `inspect` input): read whole, at most
/// `limit` bytes (a `ReadLimits` constant), or refused with the one line SPEC §1 asks for.
public enum InputFile {
    /// The bytes of `path`; `missing` is the reason given when nothing is there.
    public static func read(_ path: String, limit: Int, field: String?, missing: String = "no such file") throws -> Data {
        switch RegularFile.read(path, limit: limit) {
        case let .success((data, _)): return data
        case .failure(.missing): throw ChpkiError.input(.fileMissing, file: path, field: field, missing)
        case let .failure(failure): throw ChpkiError.input(failure.code, file: path, field: field, failure.reason)
        }
    }
}
