import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// chpki's mktemp (FileSystem/TemporaryName.swift) keeps glibc's contract, and Foundation's atomic
/// write, its one caller, still works through it.
@Suite("mktemp for Foundation")
struct TemporaryNameTests {
    @Test("the trailing XXXXXX becomes six random letters or digits, in place")
    func fillsThePlaceholder() {
        var names: Set<String> = []
        for _ in 0..<50 {
            var template = Array("/tmp/chpki.XXXXXX".utf8CString)
            let name = template.withUnsafeMutableBufferPointer { buffer in
                temporaryName(buffer.baseAddress).map { String(cString: $0) }
            }
            #expect(name?.hasPrefix("/tmp/chpki.") == true)
            #expect(name?.count == "/tmp/chpki.XXXXXX".count)
            #expect(name.map { $0.suffix(6).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } } == true)
            names.insert(name ?? "")
        }
        #expect(names.count == 50)
    }

    @Test("a template without six trailing X is an empty string and EINVAL, as glibc's")
    func refusesABadTemplate() {
        var template = Array("/tmp/chpki.XXXX".utf8CString)
        errno = 0
        let name = template.withUnsafeMutableBufferPointer { buffer in
            temporaryName(buffer.baseAddress).map { String(cString: $0) }
        }
        #expect(name == "")
        #expect(errno == EINVAL)
    }

    @Test("Foundation's atomic write, which calls mktemp, writes the file")
    func foundationAtomicWrite() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chpki-mktemp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("out")
        try Data("one".utf8).write(to: file, options: .atomic)
        try Data("two".utf8).write(to: file, options: .atomic)
        #expect(try Data(contentsOf: file) == Data("two".utf8))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["out"])
    }
}
