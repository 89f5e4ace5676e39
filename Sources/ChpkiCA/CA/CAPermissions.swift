import Foundation
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// SPEC §6: `ca/` is 0700 and everything in it 0600 (subdirectories such as `retired/` 0700). A CA
/// restored from a backup with looser modes (with `--no-passphrase` that exposes every key) is put
/// back by every command that opens it, one line per file it fixed, so the operator learns of it.
package enum CAPermissions {
    static let directoryMode: UInt16 = 0o700
    static let fileMode: UInt16 = 0o600

    /// Tightens what is looser or other than the rule (symlinks and special files are left alone);
    /// returns one message per change. Nothing is done where there is no CA (no `ca.db`).
    package static func restore(_ directory: CADirectory) throws -> [String] {
        guard try FileStatus.of(directory.file(CADatabase.fileName))?.kind == .regular else { return [] }
        var messages: [String] = []
        func fix(_ path: String, shownAs name: String) throws {
            guard let status = try FileStatus.of(path, followLinks: false) else { return }
            let wanted: UInt16
            switch status.kind {
            case .directory: wanted = directoryMode
            case .regular: wanted = fileMode
            case .symlink, .other: return
            }
            guard status.mode != wanted else { return }
            try FileOperations.setMode(path, mode_t(wanted))
            messages.append("\(name) was \(octal(status.mode)); set to \(octal(wanted))")
        }
        try fix(directory.path, shownAs: Path.join(directory.path, ""))
        for name in try entries(of: directory.path) {
            let path = directory.file(name)
            try fix(path, shownAs: path)
            guard try FileStatus.of(path, followLinks: false)?.kind == .directory else { continue }
            for inner in try entries(of: path) { try fix(Path.join(path, inner), shownAs: Path.join(path, inner)) }
        }
        return messages
    }

    private static func entries(of path: String) throws -> [String] {
        do { return try FileManager.default.contentsOfDirectory(atPath: path).sorted() } catch {
            throw ChpkiError.input(.caDirectoryUnusable, file: path, field: nil, "cannot list the CA directory: \(error.localizedDescription)")
        }
    }

    private static func octal(_ mode: UInt16) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
