import Glibc

/// A write to a socket or pipe whose reader is gone raises SIGPIPE, which ends the process: a
/// health check's server closing the connection (a TLS 1.3 server refuses a client certificate
/// only after the client's handshake is done, while it writes its request) or a copy command that
/// exits early must cost an error, not chpki. Ignoring SIGPIPE process-wide would be inherited
/// by every command chpki starts, so it is blocked on the calling thread for the duration of
/// `body`, and one that `body` raised is taken before the mask is restored (the write itself
/// then fails with EPIPE).
public enum PipeSignal {
    public static func blocked<T>(_ body: () throws -> T) rethrows -> T {
        var pipeSignal = sigset_t(), previous = sigset_t()
        sigemptyset(&pipeSignal)
        sigaddset(&pipeSignal, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous)
        defer {
            var pending = sigset_t()
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1, sigismember(&previous, SIGPIPE) == 0 {
                var now = timespec(tv_sec: 0, tv_nsec: 0)
                _ = sigtimedwait(&pipeSignal, nil, &now)
            }
            pthread_sigmask(SIG_SETMASK, &previous, nil)
        }
        return try body()
    }
}
