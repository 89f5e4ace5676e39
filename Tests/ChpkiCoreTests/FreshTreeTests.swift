import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// FreshTree, the writer of `chpki bundle`'s staging trees: files are created exactly once with
/// exactly the mode and time asked (whatever the umask), never through a symlink; and `replace`
/// swaps a whole tree so a reader sees the old one or the new one, and hands back the old one.
@Suite("Fresh tree")
struct FreshTreeTests {
    static func directory() throws -> String { try CATestSupport.temporaryDirectory("fresh") }
    static let when = Date(timeIntervalSince1970: 1_700_000_000)

    static func status(_ path: String) throws -> FileStatus {
        guard let status = try FileStatus.of(path) else { throw ChpkiError(.fileMissing, "\(path) is missing") }
        return status
    }

    static func modified(_ path: String) throws -> Date {
        try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as! Date
    }

    @Test("a file gets its content, exactly its mode and its time", arguments: [UInt16(0o600), 0o644, 0o640, 0o400, 0o755])
    func createFile(mode: UInt16) throws {
        let path = try Self.directory() + "/file"
        try FreshTree.createFile(path, Data("content\n".utf8), mode: mode, modified: Self.when)
        #expect(CATestSupport.read(path) == Data("content\n".utf8))
        #expect(try Self.status(path).mode & 0o7777 == mode)
        #expect(try Self.modified(path) == Self.when)
    }

    @Test("the umask does not narrow the mode asked for")
    func umaskIgnored() throws {
        let path = try Self.directory() + "/file"
        let old = umask(0o077)
        defer { umask(old) }
        try FreshTree.createFile(path, Data(), mode: 0o644, modified: Self.when)
        #expect(try Self.status(path).mode & 0o7777 == 0o644)
    }

    @Test("an empty file and a large one are written whole")
    func sizes() throws {
        let directory = try Self.directory()
        try FreshTree.createFile(directory + "/empty", Data(), mode: 0o600, modified: Self.when)
        #expect(CATestSupport.read(directory + "/empty") == Data())
        let large = Data((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try FreshTree.createFile(directory + "/large", large, mode: 0o600, modified: Self.when)
        #expect(CATestSupport.read(directory + "/large") == large)
    }

    @Test("an existing file is never overwritten")
    func neverOverwrites() throws {
        let path = try Self.directory() + "/file"
        try CATestSupport.write("old", to: path)
        #expect(throws: POSIXFailure.self) { try FreshTree.createFile(path, Data("new".utf8), mode: 0o600, modified: Self.when) }
        #expect(CATestSupport.read(path) == Data("old".utf8))
    }

    @Test("a symlink at the name is not followed: its target stays untouched")
    func symlinkNotFollowed() throws {
        let directory = try Self.directory()
        let target = directory + "/target"
        try CATestSupport.write("target", to: target)
        try FileManager.default.createSymbolicLink(atPath: directory + "/link", withDestinationPath: target)
        #expect(throws: POSIXFailure.self) { try FreshTree.createFile(directory + "/link", Data("evil".utf8), mode: 0o600, modified: Self.when) }
        #expect(CATestSupport.read(target) == Data("target".utf8))
        // a dangling symlink neither: nothing is created at its target
        try FileManager.default.createSymbolicLink(atPath: directory + "/dangling", withDestinationPath: directory + "/nowhere")
        #expect(throws: POSIXFailure.self) { try FreshTree.createFile(directory + "/dangling", Data("x".utf8), mode: 0o600, modified: Self.when) }
        #expect(!CATestSupport.exists(directory + "/nowhere"))
    }

    @Test("a missing parent is an error naming the path")
    func missingParent() throws {
        let path = try Self.directory() + "/absent/file"
        let failure = #expect(throws: POSIXFailure.self) { try FreshTree.createFile(path, Data(), mode: 0o600, modified: Self.when) }
        #expect(failure?.code == ENOENT)
        #expect(failure?.message.contains(path) == true)
    }

    @Test("makeDirectory creates with exactly the mode, and sets it on an existing one", arguments: [UInt16(0o700), 0o755, 0o750])
    func makeDirectory(mode: UInt16) throws {
        let directory = try Self.directory()
        let old = umask(0o077)
        defer { umask(old) }
        try FreshTree.makeDirectory(directory + "/new", mode: mode)
        #expect(try Self.status(directory + "/new").mode & 0o7777 == mode)
        #expect(try Self.status(directory + "/new").kind == .directory)
        try FileManager.default.createDirectory(atPath: directory + "/existing", withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o777])
        try CATestSupport.write("kept", to: directory + "/existing/file")
        try FreshTree.makeDirectory(directory + "/existing", mode: mode)
        #expect(try Self.status(directory + "/existing").mode & 0o7777 == mode)
        #expect(CATestSupport.read(directory + "/existing/file") == Data("kept".utf8))
    }

    @Test("setTime sets a directory's time after its entries are written")
    func setTime() throws {
        let directory = try Self.directory()
        try FreshTree.makeDirectory(directory + "/tree", mode: 0o755)
        try FreshTree.createFile(directory + "/tree/a", Data("a".utf8), mode: 0o644, modified: Self.when)
        FreshTree.setTime(directory + "/tree", Self.when)
        #expect(try Self.modified(directory + "/tree") == Self.when)
        #expect(try Self.modified(directory + "/tree/a") == Self.when)
    }

    @Test("setTime on a symlink changes the link, not its target")
    func setTimeNoFollow() throws {
        let directory = try Self.directory()
        try CATestSupport.write("t", to: directory + "/target")
        let before = try Self.modified(directory + "/target")
        try FileManager.default.createSymbolicLink(atPath: directory + "/link", withDestinationPath: directory + "/target")
        FreshTree.setTime(directory + "/link", Self.when)
        #expect(try Self.modified(directory + "/target") == before)
    }

    @Test("times before 1970 and with fractions are set to the whole second below")
    func timeRounding() throws {
        let directory = try Self.directory()
        try FreshTree.createFile(directory + "/f", Data(), mode: 0o600, modified: Date(timeIntervalSince1970: 1_700_000_000.9))
        #expect(try Self.modified(directory + "/f") == Date(timeIntervalSince1970: 1_700_000_000))
    }

    @Test("syncFileSystem succeeds on a directory and refuses a missing one")
    func syncFileSystem() throws {
        let directory = try Self.directory()
        try FreshTree.syncFileSystem(containing: directory)
        #expect(throws: POSIXFailure.self) { try FreshTree.syncFileSystem(containing: directory + "/absent") }
    }

    // MARK: - replace

    static func tree(_ path: String, _ files: [String: String]) throws {
        try FreshTree.makeDirectory(path, mode: 0o755)
        for (name, content) in files { try FreshTree.createFile(path + "/" + name, Data(content.utf8), mode: 0o644, modified: when) }
    }

    static func contents(_ path: String) -> [String: String] {
        var result: [String: String] = [:]
        for name in CATestSupport.names(in: path) {
            result[name] = CATestSupport.read(path + "/" + name).map { String(decoding: $0, as: UTF8.self) }
        }
        return result
    }

    @Test("replace with no target moves the new tree in and returns nil")
    func replaceNew() throws {
        let directory = try Self.directory()
        try Self.tree(directory + "/staging", ["a": "new a"])
        let old = try FreshTree.replace(directory + "/target", with: directory + "/staging")
        #expect(old == nil)
        #expect(Self.contents(directory + "/target") == ["a": "new a"])
        #expect(!CATestSupport.exists(directory + "/staging"))
    }

    @Test("replace swaps an existing tree and returns where the old one now is")
    func replaceExisting() throws {
        let directory = try Self.directory()
        try Self.tree(directory + "/target", ["a": "old a", "gone": "only in old"])
        try Self.tree(directory + "/staging", ["a": "new a", "b": "new b"])
        let old = try FreshTree.replace(directory + "/target", with: directory + "/staging")
        #expect(Self.contents(directory + "/target") == ["a": "new a", "b": "new b"])
        let oldPath = try #require(old)
        #expect(Self.contents(oldPath) == ["a": "old a", "gone": "only in old"])
        #expect(oldPath != directory + "/target")
    }

    @Test("replace keeps the tree's own mode")
    func replaceKeepsMode() throws {
        let directory = try Self.directory()
        try Self.tree(directory + "/target", [:])
        try FreshTree.makeDirectory(directory + "/staging", mode: 0o700)
        _ = try FreshTree.replace(directory + "/target", with: directory + "/staging")
        #expect(try Self.status(directory + "/target").mode & 0o7777 == 0o700)
    }

    @Test("a reader sees the old tree or the new one, never neither, while trees are swapped")
    func replaceIsAtomicForReaders() throws {
        let directory = try Self.directory()
        try Self.tree(directory + "/target", ["marker": "0"])
        let stop = Flag()
        let missing = Flag()
        let reader = Background { () -> Int in
            var reads = 0
            while !stop.isSet {
                if CATestSupport.read(directory + "/target/marker") == nil { missing.set() }
                reads += 1
            }
            return reads
        }
        for generation in 1...100 {
            try Self.tree(directory + "/staging", ["marker": "\(generation)"])
            if let old = try FreshTree.replace(directory + "/target", with: directory + "/staging") {
                try FileManager.default.removeItem(atPath: old)
            }
        }
        stop.set()
        guard case let .success(reads)? = reader.wait(20) else {
            Issue.record("the reader did not stop")
            return
        }
        #expect(reads > 0)
        #expect(!missing.isSet, "a reader found no tree in place")
        #expect(Self.contents(directory + "/target") == ["marker": "100"])
    }

    @Test("replace with a missing staging tree fails and leaves the target")
    func replaceMissingStaging() throws {
        let directory = try Self.directory()
        try Self.tree(directory + "/target", ["a": "old"])
        #expect(throws: POSIXFailure.self) { _ = try FreshTree.replace(directory + "/target", with: directory + "/absent") }
        #expect(Self.contents(directory + "/target") == ["a": "old"])
    }

    @Test("rename moves a finished file over its target")
    func renameFile() throws {
        let directory = try Self.directory()
        try CATestSupport.write("old", to: directory + "/target")
        try FreshTree.createFile(directory + "/.staged", Data("new".utf8), mode: 0o640, modified: Self.when)
        try FreshTree.rename(directory + "/.staged", to: directory + "/target")
        #expect(CATestSupport.read(directory + "/target") == Data("new".utf8))
        #expect(try Self.status(directory + "/target").mode & 0o7777 == 0o640)
        #expect(!CATestSupport.exists(directory + "/.staged"))
        #expect(throws: POSIXFailure.self) { try FreshTree.rename(directory + "/.staged", to: directory + "/target") }
    }
}
