import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive flock(2) on a directory: every command that changes the CA holds it, so two
/// chpki runs never interleave. Locking the directory itself leaves no lock file behind.
public final class DirectoryLock {
    private let descriptor: Int32

    /// Blocks until the lock is held; `waiting` is called once if another process holds it.
    public init(directory: String, waiting: () -> Void = {}) throws {
        descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw POSIXFailure.last("cannot open \(directory) to lock it") }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK else {
                close(descriptor)
                throw POSIXFailure.last("cannot lock \(directory)")
            }
            waiting()
            while flock(descriptor, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    close(descriptor)
                    throw POSIXFailure.last("cannot lock \(directory)")
                }
            }
        }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
