import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ChpkiBase

/// A flock(2) on a directory: every command that changes the CA holds it exclusively, readers hold
/// it shared, so no reader sees a change half done and two writers never interleave. Locking the
/// directory itself leaves no lock file behind; the kernel drops the lock when the process dies.
public final class DirectoryLock {
    public enum Mode: Sendable { case shared, exclusive }

    private let descriptor: Int32
    private let directory: String
    public private(set) var mode: Mode

    /// Blocks until the lock is held; `waiting` is called once if another process holds it.
    public init(directory: String, mode: Mode = .exclusive, waiting: () -> Void = {}) throws {
        self.directory = directory
        self.mode = mode
        descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw POSIXFailure.last("cannot open \(directory) to lock it") }
        do {
            try Self.acquire(descriptor, mode, directory: directory, waiting: waiting)
        } catch {
            close(descriptor)
            throw error
        }
    }

    /// Turns a shared lock into an exclusive one (waiting for other readers to finish).
    public func upgrade(waiting: () -> Void = {}) throws {
        guard mode == .shared else { return }
        try Self.acquire(descriptor, .exclusive, directory: directory, waiting: waiting)
        mode = .exclusive
    }

    private static func acquire(_ descriptor: Int32, _ mode: Mode, directory: String, waiting: () -> Void) throws {
        let operation = mode == .exclusive ? LOCK_EX : LOCK_SH
        if flock(descriptor, operation | LOCK_NB) == 0 { return }
        guard errno == EWOULDBLOCK else { throw POSIXFailure.last("cannot lock \(directory)") }
        waiting()
        while flock(descriptor, operation) != 0 {
            guard errno == EINTR else { throw POSIXFailure.last("cannot lock \(directory)") }
        }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
