import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ChpkiBase

/// An `--out` directory: it exists, or is created (0755) when its parent does.
public enum OutputDirectory {
    public static func prepare(_ path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ChpkiError.input(.outputUnusable, file: path, field: "--out", "exists and is not a directory") }
            return
        }
        let parent = Path.parent(of: path)
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ChpkiError.input(.outputUnusable, file: path, field: "--out", "its parent \(parent) does not exist")
        }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
            throw ChpkiError.input(.outputUnusable, file: path, field: "--out", POSIXFailure.last("cannot create the directory").message)
        }
        chmod(path, 0o755)
    }
}
