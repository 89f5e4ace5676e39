import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// DirectoryLock against another process (`flock(1)`, as a second chpki run would hold it): an
/// exclusive lock waits for every other holder, a shared one only for an exclusive one, the
/// `waiting` callback says so once, and the kernel drops the lock when the holder ends or dies.
@Suite("Directory lock")
struct DirectoryLockTests {
    static func directory() throws -> String { try CATestSupport.temporaryDirectory("lock") }

    /// Whether another process could take the lock right now (`flock -n`: never waits).
    static func othersCanLock(_ path: String, shared: Bool) throws -> Bool {
        try CATestSupport.tool(["flock", "-n", shared ? "-s" : "-x", path, "true"]).status == 0
    }

    @Test("an exclusive lock keeps every other process out, shared or exclusive")
    func exclusiveExcludesOthers() throws {
        let path = try Self.directory()
        let lock = try DirectoryLock(directory: path, mode: .exclusive)
        #expect(lock.mode == .exclusive)
        #expect(try !Self.othersCanLock(path, shared: false))
        #expect(try !Self.othersCanLock(path, shared: true))
        withExtendedLifetime(lock) {}
    }

    @Test("a shared lock lets other readers in and keeps writers out")
    func sharedAdmitsReaders() throws {
        let path = try Self.directory()
        let lock = try DirectoryLock(directory: path, mode: .shared)
        #expect(lock.mode == .shared)
        #expect(try Self.othersCanLock(path, shared: true))
        #expect(try !Self.othersCanLock(path, shared: false))
        withExtendedLifetime(lock) {}
    }

    @Test("the default mode is exclusive")
    func defaultIsExclusive() throws {
        let path = try Self.directory()
        let lock = try DirectoryLock(directory: path)
        #expect(lock.mode == .exclusive)
        #expect(try !Self.othersCanLock(path, shared: true))
        withExtendedLifetime(lock) {}
    }

    @Test("releasing the lock (deinit) lets the next process in at once")
    func deinitReleases() throws {
        let path = try Self.directory()
        do {
            let lock = try DirectoryLock(directory: path)
            #expect(try !Self.othersCanLock(path, shared: false))
            withExtendedLifetime(lock) {}
        }
        #expect(try Self.othersCanLock(path, shared: false))
    }

    @Test("locking leaves no file behind and changes nothing in the directory")
    func noLockFile() throws {
        let path = try Self.directory()
        try CATestSupport.write("x", to: path + "/existing")
        let before = CATestSupport.names(in: path)
        let modeBefore = CATestSupport.mode(path)
        do {
            let lock = try DirectoryLock(directory: path)
            #expect(CATestSupport.names(in: path) == before)
            withExtendedLifetime(lock) {}
        }
        #expect(CATestSupport.names(in: path) == before)
        #expect(CATestSupport.mode(path) == modeBefore)
    }

    @Test("uncontended, waiting is never called")
    func uncontendedDoesNotWait() throws {
        let path = try Self.directory()
        let waited = Flag()
        let lock = try DirectoryLock(directory: path, mode: .exclusive) { waited.set() }
        #expect(!waited.isSet)
        try lock.upgrade { waited.set() }
        #expect(!waited.isSet)
        withExtendedLifetime(lock) {}
    }

    @Test("held exclusively by another process: an exclusive lock waits (saying so once) until it ends")
    func waitsForAnotherWriter() throws {
        let path = try Self.directory()
        let holder = try LockHolder(path, shared: false)
        let waited = Flag()
        let attempt = Background { try DirectoryLock(directory: path, mode: .exclusive) { waited.set() } }
        #expect(attempt.wait(0.5) == nil, "took the lock another process holds")
        #expect(waited.times == 1)
        holder.release()
        guard case let .success(lock)? = attempt.wait(20) else {
            Issue.record("never got the lock after the holder ended")
            return
        }
        #expect(lock.mode == .exclusive)
        #expect(waited.times == 1)
        #expect(try !Self.othersCanLock(path, shared: true))
    }

    @Test("held exclusively by another process: even a reader waits")
    func readerWaitsForWriter() throws {
        let path = try Self.directory()
        let holder = try LockHolder(path, shared: false)
        let waited = Flag()
        let attempt = Background { try DirectoryLock(directory: path, mode: .shared) { waited.set() } }
        #expect(attempt.wait(0.5) == nil)
        #expect(waited.isSet)
        holder.release()
        guard case let .success(lock)? = attempt.wait(20) else {
            Issue.record("the reader never got the lock")
            return
        }
        #expect(lock.mode == .shared)
    }

    @Test("held shared by another process: a reader gets in at once, a writer waits")
    func sharedHolder() throws {
        let path = try Self.directory()
        let holder = try LockHolder(path, shared: true)
        let readerWaited = Flag()
        do {
            let reader = try DirectoryLock(directory: path, mode: .shared) { readerWaited.set() }
            #expect(!readerWaited.isSet)
            withExtendedLifetime(reader) {}
        }

        let writerWaited = Flag()
        let writer = Background { try DirectoryLock(directory: path, mode: .exclusive) { writerWaited.set() } }
        #expect(writer.wait(0.5) == nil)
        #expect(writerWaited.isSet)
        holder.release()
        guard case .success? = writer.wait(20) else {
            Issue.record("the writer never got the lock")
            return
        }
    }

    @Test("a holder killed with SIGKILL leaves no lock: the kernel drops it")
    func killedHolderReleases() throws {
        let path = try Self.directory()
        let holder = try LockHolder(path, shared: false)
        #expect(try !Self.othersCanLock(path, shared: false))
        holder.kill()
        let lock = Background { try DirectoryLock(directory: path, mode: .exclusive) }
        guard case .success? = lock.wait(20) else {
            Issue.record("the lock of a killed process was not released")
            return
        }
    }

    @Test("upgrade turns a shared lock exclusive, waiting for the other reader to finish")
    func upgradeWaitsForOtherReaders() throws {
        let path = try Self.directory()
        let lock = try DirectoryLock(directory: path, mode: .shared)
        let holder = try LockHolder(path, shared: true)
        let waited = Flag()
        let upgrade = Background { try lock.upgrade { waited.set() } }
        #expect(upgrade.wait(0.5) == nil, "upgraded while another reader holds the lock")
        #expect(waited.isSet)
        #expect(lock.mode == .shared)
        holder.release()
        guard case .success? = upgrade.wait(20) else {
            Issue.record("the upgrade never finished")
            return
        }
        #expect(lock.mode == .exclusive)
        #expect(try !Self.othersCanLock(path, shared: true))
    }

    @Test("upgrading an exclusive lock is a no-op")
    func upgradeOfExclusive() throws {
        let path = try Self.directory()
        let lock = try DirectoryLock(directory: path, mode: .exclusive)
        try lock.upgrade()
        #expect(lock.mode == .exclusive)
        #expect(try !Self.othersCanLock(path, shared: true))
    }

    @Test("two locks in one process exclude each other too (one descriptor each)")
    func twoInOneProcess() throws {
        let path = try Self.directory()
        var first: DirectoryLock? = try DirectoryLock(directory: path)
        let second = Background { try DirectoryLock(directory: path) }
        #expect(second.wait(0.5) == nil)
        withExtendedLifetime(first) {}
        first = nil
        guard case .success? = second.wait(20) else {
            Issue.record("the second lock never got in")
            return
        }
    }

    @Test("a missing directory is refused with the system's reason")
    func missingDirectory() throws {
        let path = try Self.directory() + "/absent"
        let failure = #expect(throws: POSIXFailure.self) { _ = try DirectoryLock(directory: path) }
        #expect(failure?.code == ENOENT)
        #expect(failure?.message.contains(path) == true)
    }

    @Test("a regular file is not a directory to lock")
    func fileIsNotADirectory() throws {
        let path = try Self.directory() + "/file"
        try CATestSupport.write("not a directory", to: path)
        let failure = #expect(throws: POSIXFailure.self) { _ = try DirectoryLock(directory: path) }
        #expect(failure?.code == ENOTDIR)
    }

    @Test("a refused open leaks no descriptor")
    func noDescriptorLeak() throws {
        let path = try Self.directory() + "/absent"
        let before = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        for _ in 0..<50 { _ = try? DirectoryLock(directory: path) }
        let lockPath = try Self.directory()
        for _ in 0..<50 { _ = try DirectoryLock(directory: lockPath) }
        let after = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        // Other tests run in parallel in this process: allow a few of theirs, never 50 of ours.
        #expect(after - before < 20)
    }
}
