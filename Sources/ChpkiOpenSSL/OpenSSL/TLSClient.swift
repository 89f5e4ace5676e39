import Foundation
import Glibc
internal import CChpkiOpenSSL
import ChpkiBase
import ChpkiModel

/// A TLS client connection, for the rollout's health checks: the server's chain is verified
/// against the given trust anchors only (never the system store) and its name against
/// `serverName`; a client certificate is presented when one is given. Every socket operation is
/// bounded by the deadline and every read by a byte limit: a server that stalls or floods costs a
/// timeout, never a hang.
public final class TLSClient {
    /// A client certificate (leaf first, then its chain) and its key.
    public struct Identity {
        public var chain: [Certificate]
        public var key: PrivateKey

        public init(chain: [Certificate], key: PrivateKey) {
            self.chain = chain
            self.key = key
        }
    }

    private let context: OpaquePointer
    private let ssl: OpaquePointer
    private let socket: Int32
    private let deadline: Date

    /// Connects to `address`:`port` and completes a verified handshake by `deadline`.
    /// `preamble` runs on the plain socket before TLS starts (PostgreSQL's SSLRequest).
    public static func connect(address: String, port: Int, serverName: String, trust: [Certificate],
                               identity: Identity?, deadline: Date,
                               preamble: ((PlainSocket) throws -> Void)? = nil) throws -> TLSClient {
        guard !trust.isEmpty else { throw TLSFailure("no trust anchor to verify \(serverName) against") }
        let fd = try PlainSocket.open(address: address, port: port, deadline: deadline)
        do {
            if let preamble { try preamble(PlainSocket(fd: fd, deadline: deadline)) }
            return try TLSClient(fd: fd, serverName: serverName, trust: trust, identity: identity, deadline: deadline)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    private init(fd: Int32, serverName: String, trust: [Certificate], identity: Identity?, deadline: Date) throws {
        ERR_clear_error()
        let context = try checkNotNil(SSL_CTX_new(TLS_client_method()), "SSL_CTX_new")
        var built = false
        defer { if !built { SSL_CTX_free(context) } }
        _ = chpki_ssl_ctx_tls12_minimum(context)
        let store = try checkNotNil(SSL_CTX_get_cert_store(context), "SSL_CTX_get_cert_store")
        for anchor in trust { try check(X509_STORE_add_cert(store, anchor.pointer), "X509_STORE_add_cert") }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        if let identity, let leaf = identity.chain.first {
            try check(SSL_CTX_use_certificate(context, leaf.pointer), "SSL_CTX_use_certificate")
            for extra in identity.chain.dropFirst() {
                try check(chpki_ssl_ctx_add1_chain_cert(context, extra.pointer), "SSL_CTX_add1_chain_cert")
            }
            try check(SSL_CTX_use_PrivateKey(context, identity.key.pointer), "SSL_CTX_use_PrivateKey")
            try check(SSL_CTX_check_private_key(context), "the client key does not match its certificate")
        }
        let ssl = try checkNotNil(SSL_new(context), "SSL_new")
        var connected = false
        defer { if !connected { SSL_free(ssl) } }
        // The name the certificate must carry: an IP address is checked as one, anything else as a
        // DNS name, which also goes out as SNI (servers such as HAProxy pick the certificate by it).
        if Self.isIPAddress(serverName) {
            try check(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), serverName), "X509_VERIFY_PARAM_set1_ip_asc")
        } else {
            try check(SSL_set1_host(ssl, serverName), "SSL_set1_host")
            try check(chpki_ssl_set_sni(ssl, serverName), "SSL_set_tlsext_host_name")
        }
        try check(SSL_set_fd(ssl, fd), "SSL_set_fd")
        try PlainSocket.setTimeouts(fd, deadline: deadline)
        let result = PipeSignal.blocked { SSL_connect(ssl) }
        guard result == 1 else {
            let verify = SSL_get_verify_result(ssl)
            if verify != Int(X509_V_OK) {
                let reason = X509_verify_cert_error_string(verify).map { String(cString: $0) } ?? "code \(verify)"
                ERR_clear_error()
                throw TLSFailure("the server's certificate does not verify for \(serverName): \(reason)")
            }
            throw TLSFailure(Self.failure(ssl, result, "TLS handshake", deadline: deadline))
        }
        self.context = context
        self.ssl = ssl
        socket = fd
        self.deadline = deadline
        built = true
        connected = true
    }

    /// The leaf the server presented in the handshake (already verified against the trust): what a
    /// health check compares with the leaf the host installed, to tell new files from old ones.
    public var peerCertificate: Certificate? {
        SSL_get1_peer_certificate(ssl).map { Certificate(takingOwnershipOf: $0) }
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(context)
        Glibc.close(socket)
    }

    public func write(_ data: Data) throws {
        guard !data.isEmpty else { return }
        try PlainSocket.setTimeouts(socket, deadline: deadline)
        let result = PipeSignal.blocked { data.withUnsafeBytes { raw in SSL_write(ssl, raw.baseAddress, Int32(raw.count)) } }
        guard result == Int32(data.count) else { throw TLSFailure(Self.failure(ssl, result, "TLS write", deadline: deadline)) }
    }

    /// Reads until the server closes or `limit` bytes arrived (more is a failure: nothing a health
    /// endpoint answers is that large). `enough` lets a caller stop early on a complete answer.
    public func read(limit: Int, enough: (Data) -> Bool = { _ in false }) throws -> Data {
        var out = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !enough(out) {
            try PlainSocket.setTimeouts(socket, deadline: deadline)
            // A read may write too (a TLS 1.3 key update, an alert).
            let count = PipeSignal.blocked { SSL_read(ssl, &buffer, Int32(buffer.count)) }
            if count <= 0 {
                let code = SSL_get_error(ssl, count)
                if code == SSL_ERROR_ZERO_RETURN || (code == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && !out.isEmpty) {
                    ERR_clear_error()
                    break
                }
                throw TLSFailure(Self.failure(ssl, count, "TLS read", deadline: deadline))
            }
            out.append(contentsOf: buffer[0..<Int(count)])
            guard out.count <= limit else { throw TLSFailure("the server sent more than \(limit) bytes") }
        }
        return out
    }

    private static func failure(_ ssl: OpaquePointer, _ result: Int32, _ what: String, deadline: Date) -> String {
        let code = SSL_get_error(ssl, result)
        let saved = errno
        let queue = OpenSSLError.drain(what)
        if code == SSL_ERROR_SYSCALL || code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE {
            if Date() >= deadline || saved == EAGAIN || saved == EWOULDBLOCK { return "\(what): timed out" }
            if saved != 0 { return "\(what): \(String(cString: strerror(saved)))" }
            return "\(what): the server closed the connection"
        }
        return queue.reasons.isEmpty ? "\(what) failed (SSL error \(code))" : queue.description
    }

    package static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}

/// Why a connection or a check failed, as one line.
public struct TLSFailure: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A connected TCP socket before TLS: what a protocol's preamble reads and writes.
public struct PlainSocket {
    let fd: Int32
    let deadline: Date

    public func write(_ data: Data) throws {
        try Self.setTimeouts(fd, deadline: deadline)
        var sent = 0
        while sent < data.count {
            let count = data.withUnsafeBytes { raw in Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw TLSFailure("write: \(Self.reason(errno, deadline))") }
            sent += count
        }
    }

    /// Exactly `count` bytes (a preamble's answer is a few bytes).
    public func read(_ count: Int) throws -> Data {
        var out = Data()
        var buffer = [UInt8](repeating: 0, count: count)
        while out.count < count {
            try Self.setTimeouts(fd, deadline: deadline)
            let got = Glibc.recv(fd, &buffer, count - out.count, 0)
            if got < 0 && errno == EINTR { continue }
            if got == 0 { throw TLSFailure("the server closed the connection") }
            guard got > 0 else { throw TLSFailure("read: \(Self.reason(errno, deadline))") }
            out.append(contentsOf: buffer[0..<got])
        }
        return out
    }

    private static func reason(_ code: Int32, _ deadline: Date) -> String {
        code == EAGAIN || code == EWOULDBLOCK || Date() >= deadline ? "timed out" : String(cString: strerror(code))
    }

    /// A TCP connection to `address` (numeric, or a name the resolver knows), by `deadline`.
    static func open(address: String, port: Int, deadline: Date) throws -> Int32 {
        guard (1...65535).contains(port) else { throw TLSFailure("port \(port) is not a TCP port") }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(address, String(port), &hints, &list)
        guard status == 0, let list else { throw TLSFailure("cannot resolve \(address): \(String(cString: gai_strerror(status)))") }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var cursor: UnsafeMutablePointer<addrinfo>? = list
        while let info = cursor {
            cursor = info.pointee.ai_next
            let fd = Glibc.socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue),
                                  info.pointee.ai_protocol)
            guard fd >= 0 else { lastError = String(cString: strerror(errno)); continue }
            if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 || errno == EINPROGRESS {
                var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let wait = max(0, Int32(deadline.timeIntervalSinceNow * 1000))
                let ready = poll(&poller, 1, wait)
                var soError: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                if ready == 1, getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length) == 0, soError == 0 {
                    // Back to blocking: every later operation is bounded by SO_RCVTIMEO/SO_SNDTIMEO.
                    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
                    return fd
                }
                lastError = ready == 0 ? "timed out" : String(cString: strerror(soError != 0 ? soError : errno))
            } else {
                lastError = String(cString: strerror(errno))
            }
            Glibc.close(fd)
        }
        throw TLSFailure("connect to \(address):\(port): \(lastError)")
    }

    /// Send and receive timeouts set to the time left before `deadline` (at least 1 ms).
    static func setTimeouts(_ fd: Int32, deadline: Date) throws {
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { throw TLSFailure("timed out") }
        var value = timeval(tv_sec: Int(left), tv_usec: max(1000, Int((left - left.rounded(.down)) * 1_000_000)))
        let size = socklen_t(MemoryLayout<timeval>.size)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, size)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, size)
    }
}
