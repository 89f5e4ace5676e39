import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA
@testable import ChpkiPlatform

/// InstallJournal on its own: `commit` renames every staged file and removes itself; `freeName`
/// never reuses a name; `recover` with nothing to do changes nothing; `pending` only reports.
@Suite("Install journal")
struct InstallJournalTests {
    typealias S = CATestSupport
    static let targets = ["conf/a.json", "conf/b.pem", "data/flag"]

    static func setUp() throws -> (String, RootedDirectory, InstallJournal) {
        let path = try S.temporaryDirectory("journal")
        for directory in ["conf", "data"] {
            try FileManager.default.createDirectory(atPath: path + "/" + directory, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o755])
        }
        let root = try RootedDirectory(path, trustedOwners: OwnershipRule.owners)
        return (path, root, InstallJournal(root: root, directory: "conf", targets: targets))
    }

    @Test("commit renames every staged file into place, across directories, and leaves no journal")
    func commit() throws {
        let (path, root, journal) = try Self.setUp()
        var entries: [InstallJournal.Entry] = []
        for target in Self.targets {
            let temporary = try root.stage(target, data: Data("new \(target)".utf8), mode: 0o600, owner: nil, group: nil)
            entries.append(.init(path: target, temporary: temporary, backup: nil))
        }
        try journal.commit(entries)
        for target in Self.targets { #expect(S.read(path + "/" + target) == Data("new \(target)".utf8)) }
        #expect(!S.exists(path + "/conf/" + InstallJournal.name))
        #expect(S.names(in: path + "/conf") == ["a.json", "b.pem"])
        #expect(S.names(in: path + "/data") == ["flag"])
    }

    @Test("commit with a backup keeps the old file under that name")
    func commitWithBackup() throws {
        let (path, root, journal) = try Self.setUp()
        try root.writeFile("conf/a.json", data: Data("old".utf8), mode: 0o600, owner: nil, group: nil)
        let temporary = try root.stage("conf/a.json", data: Data("new".utf8), mode: 0o600, owner: nil, group: nil)
        try journal.commit([.init(path: "conf/a.json", temporary: temporary, backup: "a.json.chpki-backup-20270101T000000Z")])
        #expect(S.read(path + "/conf/a.json") == Data("new".utf8))
        #expect(S.read(path + "/conf/a.json.chpki-backup-20270101T000000Z") == Data("old".utf8))
    }

    @Test("recover with nothing to do returns no note and changes nothing")
    func recoverNothing() throws {
        let (path, root, journal) = try Self.setUp()
        try root.writeFile("conf/a.json", data: Data("kept".utf8), mode: 0o600, owner: nil, group: nil)
        let before = S.names(in: path + "/conf")
        #expect(try journal.recover().isEmpty)
        #expect(S.names(in: path + "/conf") == before)
        #expect(try journal.pending().isEmpty)
    }

    @Test("a leftover temporary directory of makeDirectory is removed too")
    func leftoverDirectory() throws {
        let (path, _, journal) = try Self.setUp()
        let name = ".conf.chpki-0123456789abcdef"
        try FileManager.default.createDirectory(atPath: path + "/" + name, withIntermediateDirectories: false)
        let notes = try journal.recover()
        #expect(notes.count == 1)
        #expect(!S.exists(path + "/" + name))
    }

    @Test("freeName: the base when free, else the first free -N")
    func freeName() throws {
        let (path, root, _) = try Self.setUp()
        #expect(try InstallJournal.freeName("a.bak", beside: "conf/a.json", in: root) == "a.bak")
        try S.write("x", to: path + "/conf/a.bak")
        #expect(try InstallJournal.freeName("a.bak", beside: "conf/a.json", in: root) == "a.bak-2")
        try S.write("x", to: path + "/conf/a.bak-2")
        try FileManager.default.createSymbolicLink(atPath: path + "/conf/a.bak-3", withDestinationPath: "/nowhere")
        #expect(try InstallJournal.freeName("a.bak", beside: "conf/a.json", in: root) == "a.bak-4", "a dangling symlink is not free")
    }

    @Test("a journal that is a directory is refused, not followed")
    func journalDirectory() throws {
        let (path, _, journal) = try Self.setUp()
        try FileManager.default.createDirectory(atPath: path + "/conf/" + InstallJournal.name, withIntermediateDirectories: false)
        #expect(throws: RootedDirectory.Refusal.self) { _ = try journal.recover() }
    }

    @Test("a journal's staged entry replaced by a directory is refused")
    func stagedIsDirectory() throws {
        let (path, root, journal) = try Self.setUp()
        let temporary = ".a.json.chpki-0123456789abcdef"
        try FileManager.default.createDirectory(atPath: path + "/conf/" + temporary, withIntermediateDirectories: false)
        try root.writeFile("conf/" + InstallJournal.name,
                           data: try JSONEncoder().encode(InstallJournal.Document(format: InstallJournal.format,
                                                                                  entries: [.init(path: "conf/a.json", temporary: temporary, backup: nil)])),
                           mode: 0o600, owner: nil, group: nil)
        #expect(throws: RootedDirectory.Refusal.self) { _ = try journal.recover() }
        #expect(S.exists(path + "/conf/" + InstallJournal.name), "the journal stays for a later run")
    }
}
