import Foundation
import ChpkiBase

/// mktemp(3), with glibc's contract, defined here so the link never binds Foundation's call to
/// glibc's. Foundation's atomic writes (`Data.write(options: .atomic)`, `FileManager.createFile`),
/// linked into chpki with FileManager itself, take a name from mktemp and then open it with
/// `O_CREAT | O_EXCL`, retrying on EEXIST — the race mktemp is known for cannot happen there
/// (swift-foundation, Data+Writing.swift, says so beside the call). The linker cannot see that and
/// printed "the use of `mktemp' is dangerous" on every static link; with this definition it has
/// nothing to warn about, and nothing in the build output is a warning to get used to.
/// chpki's own files never go through it: they are created with O_EXCL (FreshTree,
/// RootedDirectory) or mkstemp (AtomicFile).
@_cdecl("mktemp")
public func temporaryName(_ template: UnsafeMutablePointer<CChar>?) -> UnsafeMutablePointer<CChar>? {
    guard let template else {
        errno = EINVAL
        return nil
    }
    let length = strlen(template)
    let placeholder = 6 // the trailing "XXXXXX"
    guard length >= placeholder,
          (length - placeholder ..< length).allSatisfy({ template[$0] == CChar(UInt8(ascii: "X")) }) else {
        // glibc: an empty string and EINVAL.
        template[0] = 0
        errno = EINVAL
        return template
    }
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
    var random = SystemRandomNumberGenerator() // getrandom(2)
    for index in length - placeholder ..< length {
        template[index] = CChar(bitPattern: alphabet.randomElement(using: &random)!)
    }
    return template
}
