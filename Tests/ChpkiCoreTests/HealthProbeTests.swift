import Foundation
import Glibc
import Testing
@testable import ChpkiCore
@testable import ChpkiRollout
@testable import ChpkiCA
@testable import ChpkiOpenSSL

/// The rollout's health checks against a real TLS server (`openssl s_server`, requiring a client
/// certificate, serving `/health` from a file): verified against the given trust and name only,
/// the client certificate presented, the etcd and Patroni answers read, and every failure bounded.
@Suite("rollout: health probes", .serialized)
struct HealthProbeTests {
    final class PKI {
        let root: Certificate, otherRoot: Certificate
        /// The leaf the server presents, and another one for the same name (what a host installed
        /// when the server still runs on its old files).
        let served: Certificate, other: Certificate
        let serverChain: Data, serverKey: Data, clientChain: Data, clientKey: Data
        let directory: URL

        init() throws {
            let rootKey = try PrivateKey.generate(.ed25519), otherKey = try PrivateKey.generate(.ed25519)
            func ca(_ name: String, _ key: PrivateKey) throws -> Certificate {
                try CertificateTemplate(subject: DistinguishedName([.init("CN", name)]), serial: .random(), notBefore: Date().addingTimeInterval(-60),
                                        notAfter: Date().addingTimeInterval(3600), certificateAuthority: .init(), keyUsage: [.keyCertSign, .cRLSign])
                    .sign(publicKeyOf: key, by: Signer(certificate: nil, key: key))
            }
            let root = try ca("probe root", rootKey)
            self.root = root
            otherRoot = try ca("other root", otherKey)
            func leaf(_ name: String, _ usage: [ExtendedKeyUsage]) throws -> (Data, Data) {
                let key = try PrivateKey.generate(.ecP256)
                let cert = try CertificateTemplate(subject: DistinguishedName([.init("CN", name)]), serial: .random(),
                                                   notBefore: Date().addingTimeInterval(-60), notAfter: Date().addingTimeInterval(3600),
                                                   keyUsage: [.digitalSignature], extendedKeyUsage: usage,
                                                   subjectAlternativeNames: [.dns(name), .ip([127, 0, 0, 1])])
                    .sign(publicKeyOf: key, by: Signer(certificate: root, key: rootKey))
                return (try cert.pemEncoded(), try key.pkcs8PEM())
            }
            let server = try leaf("svc.probe.test", [.serverAuth]), client = try leaf("client.probe.test", [.clientAuth])
            served = try Certificate(pem: server.0)
            other = try Certificate(pem: try leaf("svc.probe.test", [.serverAuth]).0)
            (serverChain, serverKey, clientChain, clientKey) = (server.0, server.1, client.0, client.1)
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("chpki-probe-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try server.0.write(to: directory.appendingPathComponent("server.pem"))
            try server.1.write(to: directory.appendingPathComponent("server-key.pem"))
            try root.pemEncoded().write(to: directory.appendingPathComponent("root.pem"))
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        func probe(_ kind: HealthProbe.Kind, port: Int, name: String = "svc.probe.test", trust: Certificate? = nil,
                   client: Bool = true, installed: Certificate? = nil) -> HealthProbe {
            HealthProbe(kind: kind, address: "127.0.0.1", port: port, serverName: name, trust: [trust ?? root],
                        identity: client ? .init(chainPEM: clientChain, keyPEM: clientKey) : nil, installedLeaf: installed)
        }
    }

    /// `openssl s_server -HTTP` in the PKI's directory: answers `GET /health` with the file `health`
    /// as it is (s_server adds no header to a file not named .html, so the file holds the answer).
    final class Server {
        let process = Process()
        let port: Int

        init(_ pki: PKI, health: String) throws {
            let answer = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(health.utf8.count)\r\n\r\n\(health)"
            try Data(answer.utf8).write(to: pki.directory.appendingPathComponent("health"))
            port = try Self.freePort()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["openssl", "s_server", "-quiet", "-HTTP", "-accept", "127.0.0.1:\(port)", "-cert", "server.pem",
                                 "-key", "server-key.pem", "-CAfile", "root.pem", "-Verify", "1", "-naccept", "1000"]
            process.currentDirectoryURL = pki.directory
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let end = Date().addingTimeInterval(10)
            while !Self.listening(port), Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        }

        deinit {
            // SIGKILL: the test runner's threads block SIGTERM, and a spawned child inherits the mask.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        static func freePort() throws -> Int {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            return Int(UInt16(bigEndian: address.sin_port))
        }

        static func listening(_ port: Int) -> Bool {
            (try? PlainSocket.open(address: "127.0.0.1", port: port, deadline: Date().addingTimeInterval(1))).map { close($0); return true } ?? false
        }
    }

    static func failure(_ probe: HealthProbe, timeout: TimeInterval = 3) -> String? {
        do { try probe.check(deadline: Date().addingTimeInterval(timeout)); return nil } catch { return "\(error)" }
    }

    @Test("etcd, patroni-rest and tls pass against a server chained to the given root, with the client certificate")
    func healthyServer() throws {
        let pki = try PKI()
        let server = try Server(pki, health: #"{"health":"true","reason":""}"#)
        for kind in [HealthProbe.Kind.etcd, .patroniREST, .tls] {
            #expect(Self.failure(pki.probe(kind, port: server.port)) == nil, "\(kind)")
        }
        // The address is also a name in the certificate: checked as an IP, no SNI.
        #expect(Self.failure(pki.probe(.etcd, port: server.port, name: "127.0.0.1")) == nil)
    }

    @Test("another root, another name, or no client certificate fail, naming why")
    func refusals() throws {
        let pki = try PKI()
        let server = try Server(pki, health: #"{"health":"true"}"#)
        let wrongRoot = Self.failure(pki.probe(.tls, port: server.port, trust: pki.otherRoot))
        #expect(wrongRoot?.contains("does not verify") == true, "\(wrongRoot ?? "passed")")
        let wrongName = Self.failure(pki.probe(.tls, port: server.port, name: "other.probe.test"))
        #expect(wrongName?.contains("does not verify") == true, "\(wrongName ?? "passed")")
        // TLS 1.3: the server refuses the missing certificate after the client's Finished, so only
        // a check that reads an answer (etcd, patroni-rest, postgres) sees it.
        #expect(Self.failure(pki.probe(.etcd, port: server.port, client: false)) != nil)
    }

    @Test("etcd fails on health false; patroni-rest on a 503")
    func unhealthyAnswers() throws {
        let pki = try PKI()
        let server = try Server(pki, health: #"{"health":"false","reason":"RAFT NO LEADER"}"#)
        let etcd = Self.failure(pki.probe(.etcd, port: server.port))
        #expect(etcd?.contains("RAFT NO LEADER") == true, "\(etcd ?? "passed")")
        try Data("HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".utf8).write(to: pki.directory.appendingPathComponent("health"))
        #expect(Self.failure(pki.probe(.patroniREST, port: server.port)) != nil)
    }

    @Test("a server that accepts and never answers costs the timeout, not a hang; nothing listening fails fast")
    func bounded() throws {
        let pki = try PKI()
        // A socket that listens and never accepts: the kernel completes the TCP handshake, nothing answers TLS.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        #expect(listen(fd, 8) == 0)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let start = Date()
        #expect(throws: (any Error).self) { try pki.probe(.etcd, port: port).wait(timeout: 1.5, interval: 0.2, attemptLimit: 0.5) }
        let spent = Date().timeIntervalSince(start)
        #expect(spent >= 1 && spent < 4, "\(spent)s")
        let closed = try Server.freePort()
        let message = Self.failure(pki.probe(.tls, port: closed), timeout: 2)
        #expect(message?.contains("connect") == true, "\(message ?? "passed")")
    }

    @Test("writing to a server that reset the connection costs an error, not the process (SIGPIPE)")
    func resetAfterHandshake() throws {
        let pki = try PKI()
        // TLS 1.2 (the client's handshake ends with the server's Finished), then a reset at once.
        // The first write to the reset socket fails with ECONNRESET, the next raises SIGPIPE,
        // whose default action ends the process: a weekly job in the soak died so (exit 141).
        let script = """
            import socket, ssl, struct
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain("server.pem", "server-key.pem")
            listener = socket.create_server(("127.0.0.1", 0))
            print(listener.getsockname()[1], flush=True)
            while True:
                conn, _ = listener.accept()
                try:
                    tls = ctx.wrap_socket(conn, server_side=True)
                    tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    tls.close()
                except Exception:
                    conn.close()
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        process.currentDirectoryURL = pki.directory
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        let port = try #require(Int(line.trimmingCharacters(in: .whitespacesAndNewlines)))
        // chpki runs with SIGPIPE's default action (a test runner may ignore it): so does this test.
        var restore = sigaction()
        var defaultAction = sigaction()
        defaultAction.__sigaction_handler.sa_handler = SIG_DFL
        sigaction(SIGPIPE, &defaultAction, &restore)
        defer { sigaction(SIGPIPE, &restore, nil) }
        let client = try TLSClient.connect(address: "127.0.0.1", port: port, serverName: "svc.probe.test", trust: [pki.root],
                                           identity: nil, deadline: Date().addingTimeInterval(5))
        Thread.sleep(forTimeInterval: 0.2)
        var failures = 0
        for _ in 0..<3 {
            do { try client.write(Data("GET /health HTTP/1.1\r\n\r\n".utf8)) } catch { failures += 1 }
        }
        #expect(failures >= 2, "the writes to a reset connection failed \(failures) of 3 times")
    }

    @Test("a server presenting the installed leaf is healthy; another leaf of the same name and root is stale, naming both serials")
    func staleLeaf() throws {
        let pki = try PKI()
        let server = try Server(pki, health: #"{"health":"true"}"#)
        for kind in [HealthProbe.Kind.tls, .etcd, .patroniREST] {
            #expect(Self.failure(pki.probe(kind, port: server.port, installed: pki.served)) == nil, "\(kind)")
            do {
                try pki.probe(kind, port: server.port, installed: pki.other).check(deadline: Date().addingTimeInterval(3))
                Issue.record("\(kind): a stale leaf passed")
            } catch let stale as HealthProbe.Stale {
                #expect(stale.served == pki.served.serial && stale.installed == pki.other.serial)
                let text = "\(stale)"
                #expect(text.contains(pki.served.serial.hex) && text.contains(pki.other.serial.hex), "\(text)")
                #expect(!text.contains("PRIVATE"))
            }
        }
        // The wait gives up on a stale server after the grace, well before the timeout, saying so.
        let start = Date()
        do {
            try pki.probe(.tls, port: server.port, installed: pki.other).wait(timeout: 20, staleGrace: 1, interval: 0.2, attemptLimit: 2)
            Issue.record("a stale leaf passed the wait")
        } catch let HealthProbe.WaitFailure.stale(_, stale, _) {
            #expect(stale.installed == pki.other.serial)
        }
        #expect(Date().timeIntervalSince(start) < 10)
        // Without a grace, a stale server is waited for until the timeout, then reported stale.
        #expect {
            try pki.probe(.tls, port: server.port, installed: pki.other).wait(timeout: 1, interval: 0.2, attemptLimit: 0.5)
        } throws: { error in
            if case HealthProbe.WaitFailure.stale = error { return true }
            return false
        }
    }

    @Test("HTTP answers: Content-Length, chunked, and garbage")
    func http() throws {
        let plain = Data("HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"health\":\"true\"}".utf8)
        #expect(HealthProbe.isCompleteHTTP(plain))
        #expect(try HealthProbe.parseHTTP(plain).0 == 200)
        let chunked = Data("HTTP/1.1 503 No\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".utf8)
        #expect(HealthProbe.isCompleteHTTP(chunked))
        let parsed = try HealthProbe.parseHTTP(chunked)
        #expect(parsed.0 == 503 && parsed.1 == Data("hello".utf8))
        #expect(throws: (any Error).self) { try HealthProbe.parseHTTP(Data("SSH-2.0\r\n\r\n".utf8)) }
        #expect(throws: (any Error).self) { try HealthProbe.dechunk(Data("zz\r\n".utf8)) }
        #expect(throws: (any Error).self) { try HealthProbe.dechunk(Data("7fffffffffffffff\r\nab".utf8)) }
    }
}
