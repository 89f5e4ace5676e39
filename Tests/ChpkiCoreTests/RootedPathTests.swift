import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// RootedDirectory, the path resolution every install stands on: nothing below the root is ever
/// reached through a symlink, `..`, an absolute path or a directory someone else controls; files
/// are staged under names recovery can recognise and committed with one rename (keeping a backup
/// link when asked); and AtomicFile's writes never leave a half-written file or a temporary.
@Suite("Rooted directory and atomic writes")
struct RootedPathTests {
    typealias S = CATestSupport

    static func root() throws -> (String, RootedDirectory) {
        let path = try S.temporaryDirectory("rooted")
        return (path, try RootedDirectory(path, trustedOwners: OwnershipRule.owners))
    }

    // MARK: - resolution

    @Test("paths that are not plain and relative are refused before anything is touched", arguments: [
        "/etc/passwd", "../escape", "a/../../escape", "a/./b", "a//b", "", "a/", "./a", "a/\u{0}b",
    ])
    func notPlain(relative: String) throws {
        let (_, root) = try Self.root()
        #expect(throws: RootedDirectory.Refusal.self) { _ = try root.entry(relative) }
        #expect(throws: RootedDirectory.Refusal.self) { try root.writeFile(relative, data: Data("x".utf8), mode: 0o600, owner: nil, group: nil) }
    }

    @Test("entry tells a missing name, a file, a directory, a symlink and a FIFO apart")
    func entries() throws {
        let (path, root) = try Self.root()
        try S.write("f", to: path + "/file")
        try FileManager.default.createDirectory(atPath: path + "/dir", withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: path + "/link", withDestinationPath: path + "/file")
        #expect(mkfifo(path + "/fifo", 0o600) == 0)
        #expect(try root.entry("absent") == .missing)
        #expect(try root.entry("absent/below") == .missing)
        if case .regular = try root.entry("file") {} else { Issue.record("file") }
        if case .directory = try root.entry("dir") {} else { Issue.record("dir") }
        #expect(try root.entry("link") == .special(.symlink))
        #expect(try root.entry("fifo") == .special(.other))
    }

    @Test("a symlinked directory on the way is refused, never followed, even to a place inside the root")
    func symlinkOnTheWay() throws {
        let (path, root) = try Self.root()
        try FileManager.default.createDirectory(atPath: path + "/real", withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: path + "/link", withDestinationPath: path + "/real")
        let outside = try S.temporaryDirectory("rooted-outside")
        try FileManager.default.createSymbolicLink(atPath: path + "/out", withDestinationPath: outside)
        for relative in ["link/file", "out/file"] {
            let refusal = #expect(throws: RootedDirectory.Refusal.self) {
                try root.writeFile(relative, data: Data("x".utf8), mode: 0o600, owner: nil, group: nil)
            }
            #expect(refusal?.path == path + "/" + relative.split(separator: "/")[0])
        }
        #expect(S.names(in: path + "/real").isEmpty)
        #expect(S.names(in: outside).isEmpty)
    }

    @Test("a file where a directory should be is refused")
    func fileOnTheWay() throws {
        let (path, root) = try Self.root()
        try S.write("f", to: path + "/a")
        #expect(throws: RootedDirectory.Refusal.self) { _ = try root.entry("a/b") }
    }

    @Test("a directory others can write is refused when it is used", arguments: [0o777, 0o775, 0o1777])
    func writableDirectoryOnTheWay(mode: Int) throws {
        let (path, root) = try Self.root()
        try FileManager.default.createDirectory(atPath: path + "/shared", withIntermediateDirectories: false)
        chmod(path + "/shared", mode_t(mode))
        #expect(throws: RootedDirectory.Refusal.self) {
            try root.writeFile("shared/secret", data: Data("x".utf8), mode: 0o600, owner: nil, group: nil)
        }
        #expect(!S.exists(path + "/shared/secret"))
    }

    @Test("the root itself is held to the rule; without trusted owners nothing is checked")
    func rootTrust() throws {
        let path = try S.temporaryDirectory("rooted")
        chmod(path, 0o777)
        #expect(throws: RootedDirectory.Refusal.self) { _ = try RootedDirectory(path, trustedOwners: OwnershipRule.owners) }
        let unchecked = try RootedDirectory(path)
        try unchecked.writeFile("file", data: Data("x".utf8), mode: 0o600, owner: nil, group: nil)
        #expect(S.read(path + "/file") == Data("x".utf8))
    }

    @Test("the root may itself be reached through a symlink (the operator's choice)")
    func rootThroughSymlink() throws {
        let path = try S.temporaryDirectory("rooted")
        let link = try S.temporaryDirectory("rooted-link") + "/root"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        let root = try RootedDirectory(link, trustedOwners: OwnershipRule.owners)
        try root.writeFile("file", data: Data("through".utf8), mode: 0o600, owner: nil, group: nil)
        #expect(S.read(path + "/file") == Data("through".utf8))
    }

    @Test("a missing root is an error")
    func missingRoot() throws {
        #expect(throws: POSIXFailure.self) { _ = try RootedDirectory(try S.temporaryDirectory("rooted") + "/absent") }
    }

    // MARK: - writing

    @Test("writeFile writes content and exactly the mode, replacing an existing file atomically")
    func writeFile() throws {
        let (path, root) = try Self.root()
        try root.writeFile("file", data: Data("one".utf8), mode: 0o640, owner: nil, group: nil)
        #expect(S.read(path + "/file") == Data("one".utf8))
        #expect(S.mode(path + "/file") == 0o640)
        try root.writeFile("file", data: Data("two".utf8), mode: 0o600, owner: nil, group: nil)
        #expect(S.read(path + "/file") == Data("two".utf8))
        #expect(S.mode(path + "/file") == 0o600)
        #expect(S.names(in: path) == ["file"])
    }

    @Test("writeFile over a symlink replaces the link and leaves its target alone")
    func writeOverSymlink() throws {
        let (path, root) = try Self.root()
        let target = try S.temporaryDirectory("rooted-target") + "/target"
        try S.write("target", to: target)
        try FileManager.default.createSymbolicLink(atPath: path + "/file", withDestinationPath: target)
        try root.writeFile("file", data: Data("new".utf8), mode: 0o600, owner: nil, group: nil)
        #expect(S.read(target) == Data("target".utf8))
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: path + "/file")) == nil)
        #expect(S.read(path + "/file") == Data("new".utf8))
    }

    @Test("owners are set on the staged file before it takes its name")
    func owners() throws {
        guard Accounts.isRoot else { return }
        let (path, root) = try Self.root()
        try root.writeFile("file", data: Data("x".utf8), mode: 0o600, owner: 1234, group: 4321)
        let status = try #require(try FileStatus.of(path + "/file"))
        #expect(status.uid == 1234 && status.gid == 4321)
    }

    @Test("stage names a temporary recovery recognises; commit renames it, keeping the old file as a backup link")
    func stageAndCommit() throws {
        let (path, root) = try Self.root()
        try root.writeFile("file", data: Data("old".utf8), mode: 0o600, owner: nil, group: nil)
        let oldInode = try FileManager.default.attributesOfItem(atPath: path + "/file")[.systemFileNumber] as? UInt64
        let temporary = try root.stage("file", data: Data("new".utf8), mode: 0o644, owner: nil, group: nil)
        #expect(RootedDirectory.isTemporary(temporary, for: "file"))
        #expect(!RootedDirectory.isTemporary(temporary, for: "other"))
        #expect(S.read(path + "/file") == Data("old".utf8), "staging must not touch the target")
        try root.commit("file", temporary: temporary, backupName: "file.bak")
        #expect(S.read(path + "/file") == Data("new".utf8))
        #expect(S.mode(path + "/file") == 0o644)
        #expect(S.read(path + "/file.bak") == Data("old".utf8))
        #expect(try FileManager.default.attributesOfItem(atPath: path + "/file.bak")[.systemFileNumber] as? UInt64 == oldInode)
        #expect(try root.sameFile("file.bak", "file.bak"))
        #expect(try !root.sameFile("file", "file.bak"))
        #expect(!S.exists(path + "/" + temporary))
    }

    @Test("a backup name already taken stops the commit before the rename")
    func backupTaken() throws {
        let (path, root) = try Self.root()
        try root.writeFile("file", data: Data("old".utf8), mode: 0o600, owner: nil, group: nil)
        try S.write("earlier backup", to: path + "/file.bak")
        let temporary = try root.stage("file", data: Data("new".utf8), mode: 0o600, owner: nil, group: nil)
        #expect(throws: POSIXFailure.self) { try root.commit("file", temporary: temporary, backupName: "file.bak") }
        #expect(S.read(path + "/file") == Data("old".utf8))
        #expect(S.read(path + "/file.bak") == Data("earlier backup".utf8))
    }

    @Test("temporary names: the exact shape only", arguments: [
        (".file.chpki-0123456789abcdef", true), (".file.chpki-0123456789ABCDEF", false), (".file.chpki-0123", false),
        ("file.chpki-0123456789abcdef", false), (".file.chpki-0123456789abcdeg", false), (".fil.chpki-0123456789abcdef", false),
    ])
    func temporaryShape(name: String, expected: Bool) {
        #expect(RootedDirectory.isTemporary(name, for: "file") == expected)
    }

    @Test("makeDirectory creates with exactly the mode, under no other name once done")
    func makeDirectory() throws {
        let (path, root) = try Self.root()
        try root.makeDirectory("dir", mode: 0o750, owner: nil, group: nil)
        #expect(S.mode(path + "/dir") == 0o750)
        #expect(S.names(in: path) == ["dir"])
        // a directory with something in it is never replaced (the rename fails), and nothing is left beside it
        try S.write("kept", to: path + "/dir/file")
        #expect(throws: (any Error).self) { try root.makeDirectory("dir", mode: 0o700, owner: nil, group: nil) }
        #expect(S.read(path + "/dir/file") == Data("kept".utf8))
        #expect(S.names(in: path) == ["dir"])
        #expect(throws: RootedDirectory.Refusal.self) { try root.makeDirectory("absent/dir", mode: 0o750, owner: nil, group: nil) }
    }

    @Test("read refuses a symlink and a file over the limit")
    func readLimits() throws {
        let (path, root) = try Self.root()
        try S.write("0123456789", to: path + "/file")
        #expect(try root.read("file", limit: 10) == Data("0123456789".utf8))
        #expect(throws: (any Error).self) { _ = try root.read("file", limit: 9) }
        try FileManager.default.createSymbolicLink(atPath: path + "/link", withDestinationPath: path + "/file")
        #expect(throws: (any Error).self) { _ = try root.read("link", limit: 100) }
    }

    @Test("remove is quiet about a missing name, removes a symlink not its target, and an empty directory on request")
    func remove() throws {
        let (path, root) = try Self.root()
        try root.remove("absent")
        try S.write("t", to: path + "/target")
        try FileManager.default.createSymbolicLink(atPath: path + "/link", withDestinationPath: path + "/target")
        try root.remove("link")
        #expect(S.exists(path + "/target"))
        try FileManager.default.createDirectory(atPath: path + "/dir", withIntermediateDirectories: false)
        #expect(throws: POSIXFailure.self) { try root.remove("dir") }
        try root.remove("dir", directory: true)
        #expect(!S.exists(path + "/dir"))
    }

    @Test("names lists a directory without . and .., and a missing one as empty")
    func names() throws {
        let (path, root) = try Self.root()
        try S.write("a", to: path + "/a")
        try S.write("b", to: path + "/.b")
        #expect(Set(try root.names(in: ".")) == ["a", ".b"])
        #expect(try root.names(in: "absent").isEmpty)
    }

    @Test("sibling names a file beside another")
    func sibling() {
        #expect(RootedDirectory.sibling(of: "etc/app/file", named: "other") == "etc/app/other")
        #expect(RootedDirectory.sibling(of: "file", named: "other") == "other")
    }

    // MARK: - AtomicFile

    @Test("AtomicFile.write: content, exact mode, no temporary left, the old content until the rename")
    func atomicWrite() throws {
        let directory = try S.temporaryDirectory("atomic")
        let path = directory + "/file"
        try AtomicFile.write(Data("one".utf8), to: path, mode: 0o640)
        #expect(S.read(path) == Data("one".utf8))
        #expect(S.mode(path) == 0o640)
        try AtomicFile.write(Data("two".utf8), to: path)
        #expect(S.read(path) == Data("two".utf8))
        #expect(S.mode(path) == 0o600)
        #expect(S.names(in: directory) == ["file"])
    }

    @Test("AtomicFile.write into a missing directory fails and creates nothing")
    func atomicMissingDirectory() throws {
        let directory = try S.temporaryDirectory("atomic")
        #expect(throws: POSIXFailure.self) { try AtomicFile.write(Data("x".utf8), to: directory + "/absent/file") }
        #expect(S.names(in: directory).isEmpty)
    }

    @Test("AtomicFile.write over a directory fails and leaves no temporary")
    func atomicOverDirectory() throws {
        let directory = try S.temporaryDirectory("atomic")
        try FileManager.default.createDirectory(atPath: directory + "/dir", withIntermediateDirectories: false)
        #expect(throws: POSIXFailure.self) { try AtomicFile.write(Data("x".utf8), to: directory + "/dir") }
        #expect(S.names(in: directory) == ["dir"])
    }

    @Test("AtomicFile.write replaces a symlink instead of writing through it")
    func atomicOverSymlink() throws {
        let directory = try S.temporaryDirectory("atomic")
        try S.write("target", to: directory + "/target")
        try FileManager.default.createSymbolicLink(atPath: directory + "/link", withDestinationPath: directory + "/target")
        try AtomicFile.write(Data("new".utf8), to: directory + "/link")
        #expect(S.read(directory + "/target") == Data("target".utf8))
        #expect(S.read(directory + "/link") == Data("new".utf8))
    }

    @Test("a reader never sees a partial file while AtomicFile rewrites it")
    func atomicForReaders() throws {
        let directory = try S.temporaryDirectory("atomic")
        let path = directory + "/file"
        let contents = (0..<2).map { Data(repeating: UInt8(ascii: $0 == 0 ? "a" : "b"), count: 256 << 10) }
        try AtomicFile.write(contents[0], to: path)
        let stop = Flag()
        let torn = Flag()
        let reader = Background { () -> Int in
            var reads = 0
            while !stop.isSet {
                if let data = FileManager.default.contents(atPath: path), !contents.contains(data) { torn.set() }
                reads += 1
            }
            return reads
        }
        for round in 0..<60 { try AtomicFile.write(contents[round % 2], to: path) }
        stop.set()
        guard case let .success(reads)? = reader.wait(30) else {
            Issue.record("the reader did not stop")
            return
        }
        #expect(reads > 0)
        #expect(!torn.isSet, "a reader saw a half-written file")
    }

    @Test("writing secret bytes goes through the same atomic write")
    func atomicSecretBytes() throws {
        let directory = try S.temporaryDirectory("atomic")
        let secret = SecretBytes(Array("key material".utf8))
        try secret.withBytes { try AtomicFile.write($0, to: directory + "/key", mode: 0o600) }
        #expect(S.read(directory + "/key") == Data("key material".utf8))
        #expect(S.mode(directory + "/key") == 0o600)
    }
}
