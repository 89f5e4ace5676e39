import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// CAFiles, the files of ca/ as views of ca.db: which file each authority role gives, what
/// `differences` reports, the leftovers `staleStaging` recognises, and what a write that fails
/// says: before a commit a refusal ("ca.db is intact"), after one the exit-3 kind naming the stale
/// file, which the next command rewrites once the obstacle is gone.
@Suite("CA files as views")
struct CAViewFilesTests {
    typealias S = CATestSupport

    static func view(_ session: CASession) throws -> CAFiles.View {
        var keys: [SerialNumber: Data] = [:]
        for authority in session.authorities {
            if let key = try session.database.authorityKeyPEM(serial: authority.serial) { keys[authority.serial] = key }
        }
        return CAFiles.render(.init(authorities: session.authorities, authorityKeys: keys, state: try session.database.publishedState(),
                                    indexEntries: try session.database.indexEntries(), now: session.now))
    }

    @Test("a CA with an intermediate: root and intermediate files, CRL, index; no rotation files (they must be absent)")
    func viewWithIntermediate() throws {
        let directory = try S.newCA()
        try S.withSession(directory, .read) { session throws in
            let view = try Self.view(session)
            #expect(Set(view.files.keys) == [CADirectory.rootCertificate, CADirectory.rootKey, CADirectory.intermediateCertificate,
                                             CADirectory.intermediateKey, CADirectory.crl, OpenSSLIndex.fileName, OpenSSLIndex.attributesFileName])
            #expect(view.absent == [CADirectory.previousRoot, CADirectory.previousRootKey, CADirectory.previousIntermediate,
                                    CADirectory.previousIntermediateKey, CADirectory.crossSigned, CADirectory.trustBundle])
            #expect(view.files[CADirectory.rootCertificate] == Data(session.authorities.first { $0.kind == .root }!.certificatePEM.utf8))
            #expect(CAFiles.differences(view, in: directory).isEmpty)
        }
    }

    @Test("a root-only CA: intermediate files are among the absent ones")
    func viewRootOnly() throws {
        let directory = try S.newCA(intermediate: false)
        try S.withSession(directory, .read) { session throws in
            let view = try Self.view(session)
            #expect(view.absent.contains(CADirectory.intermediateCertificate))
            #expect(view.absent.contains(CADirectory.intermediateKey))
            #expect(view.files[CADirectory.intermediateCertificate] == nil)
        }
    }

    @Test("during a rotation: previous-*, cross-signed and the trust bundle are in the view")
    func viewDuringRotation() throws {
        let directory = try S.newCA()
        try S.withSession(directory) { session throws in _ = try CARotation.start(session, inventory: nil) }
        try S.withSession(directory, .read) { session throws in
            let view = try Self.view(session)
            for name in [CADirectory.previousRoot, CADirectory.previousRootKey, CADirectory.previousIntermediate,
                         CADirectory.previousIntermediateKey, CADirectory.crossSigned, CADirectory.trustBundle] {
                #expect(view.files[name] != nil, "\(name)")
            }
            #expect(view.absent.isEmpty)
        }
    }

    @Test("differences names every file whose content or mode is off, and a file that should be absent")
    func differences() throws {
        let directory = try S.newCA()
        try S.withSession(directory, .read) { session throws in
            let view = try Self.view(session)
            try S.write("torn", to: directory.file(CADirectory.crl))
            chmod(directory.file(CADirectory.rootKey), 0o640)
            try S.write("stray", to: directory.file(CADirectory.crossSigned))
            try S.write("stray", to: directory.file(CAFiles.olderIntermediateName(try SerialNumber.random())))
            let names = CAFiles.differences(view, in: directory)
            #expect(names.contains(CADirectory.crl))
            #expect(names.contains(CADirectory.rootKey))
            #expect(names.contains(CADirectory.crossSigned))
            #expect(names.contains { $0.hasPrefix(CAFiles.olderIntermediatePrefix) })
            #expect(names.count == 4)
            // writing the view fixes all of them
            try CAFiles.write(view, to: directory)
            #expect(CAFiles.differences(view, in: directory).isEmpty)
            #expect(!S.exists(directory.file(CADirectory.crossSigned)))
        }
    }

    @Test("staleStaging recognises each kind of leftover and nothing else")
    func staleStaging() throws {
        let directory = try S.newCA()
        let leftovers = [".root.pem.tmp-abc123", ".ca.db.init-1-2", ".init-xyz", "index.txt.new", "crl.pem.new"]
        let kept = ["notes.new", "root.pem.bak", ".hidden", "tmp-file", "index.txt.new.old"]
        for name in leftovers + kept { try S.write("x", to: directory.file(name)) }
        #expect(Set(CAFiles.staleStaging(in: directory)) == Set(leftovers))
        CAFiles.removeStaging(CAFiles.staleStaging(in: directory), in: directory)
        for name in leftovers { #expect(!S.exists(directory.file(name)), "\(name)") }
        for name in kept { #expect(S.exists(directory.file(name)), "\(name)") }
    }

    /// Puts a non-empty directory where `name` should be: a rename over it fails, as a full disk would.
    static func obstruct(_ directory: CADirectory, _ name: String) throws {
        try? FileManager.default.removeItem(atPath: directory.file(name))
        try FileManager.default.createDirectory(atPath: directory.file(name) + "/blocker", withIntermediateDirectories: true)
    }

    @Test("a view that cannot be written, with nothing committed: a refusal naming the file")
    func writeFailureBeforeCommit() throws {
        let directory = try S.newCA()
        try S.withSession(directory, .read) { session throws in
            let view = try Self.view(session)
            try Self.obstruct(directory, OpenSSLIndex.fileName)
            let error = S.refusal { try CAFiles.write(view, to: directory) }
            #expect(error?.kind == .refused)
            #expect(error?.file == directory.file(OpenSSLIndex.fileName))
        }
    }

    @Test("a view that cannot be written after a commit: the exit-3 kind, nothing temporary left")
    func writeFailureAfterCommit() throws {
        let directory = try S.newCA()
        try S.withSession(directory, .read) { session throws in
            let view = try Self.view(session)
            try Self.obstruct(directory, OpenSSLIndex.fileName)
            let error = S.refusal { try CAFiles.write(view, to: directory, committed: "issued 3 certificates") }
            #expect(error?.kind == .committedViewsStale)
            #expect(error?.exitCode == 3)
        }
        #expect(CAFiles.staleStaging(in: directory).isEmpty)
    }

    @Test("an issue whose index.txt cannot be written: committed (exit 3), and the next open rewrites it once it can")
    func issueThenStaleView() throws {
        let directory = try S.newCA()
        try Self.obstruct(directory, OpenSSLIndex.fileName)
        // the obstacle is there before the session opens: its recovery refuses, ca.db intact
        #expect(S.refusal { _ = try S.open(directory, .read) }?.kind == .refused)
        try FileManager.default.removeItem(atPath: directory.file(OpenSSLIndex.fileName))
        let recorded = try S.withSession(directory) { session throws -> [IssuedCertificate] in
            let plan = try S.plan(session, try S.inventory())
            try Self.obstruct(directory, OpenSSLIndex.fileName)
            let error = S.refusal { _ = try session.issue(plan.work) }
            #expect(error?.kind == .committedViewsStale)
            let recorded = try session.validLeaves()
            #expect(recorded.count == plan.work.count, "the batch was committed")
            return recorded
        }
        try FileManager.default.removeItem(atPath: directory.file(OpenSSLIndex.fileName))
        try S.withSession(directory, .read) { _ in }
        let index = String(decoding: S.read(directory.file(OpenSSLIndex.fileName)) ?? Data(), as: UTF8.self)
        for leaf in recorded { #expect(index.contains(leaf.serial.hex)) }
    }

    @Test("roles: the newest current intermediate under the current root is primary; the others are 'other live'")
    func roles() throws {
        let directory = try S.newCA(constraints: NameConstraintsPolicy.constraints(for: try S.inventory()))
        let grown = try S.inventory(S.inventoryYAML.replacingOccurrences(of: "services:", with: """
              - {name: node-4.example.com, ips: [192.168.9.4], groups: [backend]}
            services:
            """))
        try S.withSession(directory) { session throws in
            let plan = try S.plan(session, grown)
            _ = try session.issue(plan.work, growingWith: NameConstraintsPolicy.constraints(for: grown))
        }
        try S.withSession(directory, .read) { session throws in
            let roles = AuthorityRoles(session.authorities)
            #expect(roles.primaryIntermediate?.serial == session.issuing.serial)
            #expect(roles.currentIntermediates.count == 2)
            #expect(roles.otherLiveIntermediates.count == 1)
            #expect(roles.previousRoot == nil && roles.previousIntermediate == nil)
            let view = try Self.view(session)
            #expect(view.files[CAFiles.olderIntermediateName(roles.otherLiveIntermediates[0].serial)] != nil)
        }
    }

    @Test("every file written from the view is 0600, and retired/ is 0700")
    func modes() throws {
        let directory = try S.newCA()
        try S.withSession(directory) { session throws in _ = try CARotation.start(session, inventory: nil) }
        try S.withSession(directory) { session throws in _ = try CARotation.finish(session, installed: nil) }
        for name in S.names(in: directory.path) where name != CADatabase.fileName && !name.hasPrefix(CADatabase.fileName) && name != CADirectory.retired {
            #expect(S.mode(directory.file(name)) == 0o600, "\(name)")
        }
        #expect(S.mode(directory.file(CADirectory.retired)) == 0o700)
        for name in S.names(in: directory.file(CADirectory.retired)) {
            #expect(S.mode(directory.file(CADirectory.retired + "/" + name)) == 0o600, "\(name)")
        }
    }
}
