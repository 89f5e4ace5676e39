import ChpkiBundles
import ChpkiModel
import ChpkiOpenSSL
import ChpkiReporting
import Foundation

/// A service's health check after a rollout step, run from the controller (SPEC §7): proves the
/// service serves again with the new files. Every kind starts with a TLS handshake verified
/// against the host's installed trust (the bundle's copy of the check's cafile, never the
/// system store) and the check's server name; a client certificate is presented where the check
/// names one. On top of that:
/// - `tls`: the handshake is the check (HAProxy, nginx, MinIO, OpenSearch).
/// - `etcd`: `GET /health` answers 200 with `{"health":"true"}` (quorum and a leader).
/// - `patroni-rest`: `GET /health` answers 200 (Patroni's PostgreSQL is running).
/// - `postgres`: the SSLRequest preamble, the handshake with the client certificate, then a
///   startup packet: any answer but "starting up"/"shutting down" shows the server took the
///   certificate and serves (the login itself is pg_hba's business, not the rollout's).
///
/// With `installedLeaf`, every kind also compares the leaf the server presented with the one the
/// host installed: a service that answers with another one is `Stale` (it runs on its old files:
/// a reload it missed or merged with another), never healthy.
public struct HealthProbe: Sendable {
    /// The kinds a manifest's check names: one list, kept with the check (ChpkiBundles).
    public typealias Kind = HealthCheck.Kind

    public var kind: Kind
    public var address: String
    public var port: Int
    public var serverName: String
    public var trust: [Certificate]
    public var identity: Identity?
    /// The leaf the server must present (the first certificate of the check's `leaf` file), or
    /// nil: any leaf that verifies against `trust` for `serverName` will do.
    public var installedLeaf: Certificate?

    /// The service answers, with another leaf than the installed one. Names both serials only
    /// (nothing secret is in a certificate, and a serial is what `chpki list` shows).
    public struct Stale: Error, CustomStringConvertible, Sendable {
        public var served: SerialNumber
        public var installed: SerialNumber
        public var description: String {
            "serves the certificate with serial \(served.hex), not the installed one (serial \(installed.hex)): it still runs on its old files"
        }
    }

    /// A client certificate chain and key, as PEM (parsed for each attempt, kept only in memory).
    public struct Identity: Sendable {
        public var chainPEM: Data
        public var keyPEM: Data

        public init(chainPEM: Data, keyPEM: Data) {
            self.chainPEM = chainPEM
            self.keyPEM = keyPEM
        }
    }

    /// Anything a health endpoint answers is far smaller.
    static let answerLimit = 64 * 1024

    public init(kind: Kind, address: String, port: Int, serverName: String, trust: [Certificate], identity: Identity?,
                installedLeaf: Certificate? = nil) {
        self.installedLeaf = installedLeaf
        self.kind = kind
        self.address = address
        self.port = port
        self.serverName = serverName
        self.trust = trust
        self.identity = identity
    }

    /// `kind address:port (server_name)`, for messages.
    public var label: String {
        let host = address.contains(":") ? "[\(address)]" : address
        return "\(kind.rawValue) \(host):\(port) (\(serverName))"
    }

    /// One attempt, finished by `deadline`; throws why the service is not healthy.
    public func check(deadline: Date) throws {
        let client = try identity.map { identity -> TLSClient.Identity in
            let chain = try Certificate.all(pem: identity.chainPEM)
            guard !chain.isEmpty else { throw TLSFailure("the client certificate file holds no certificate") }
            return TLSClient.Identity(chain: chain, key: try PrivateKey(pem: identity.keyPEM))
        }
        switch kind {
        case .tls:
            try compareLeaf(try TLSClient.connect(address: address, port: port, serverName: serverName, trust: trust, identity: client, deadline: deadline))
        case .etcd:
            let (status, body) = try httpGet("/health", identity: client, deadline: deadline)
            guard status == 200 else { throw TLSFailure("GET /health answered \(status)") }
            let health = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
            guard let value = health?["health"] as? String else { throw TLSFailure("GET /health answered no {\"health\": ...}") }
            guard value == "true" else {
                let reason = (health?["reason"] as? String).map { ": \(ControlCharacters.escaped($0))" } ?? ""
                throw TLSFailure("etcd reports health \(ControlCharacters.escaped(value))\(reason)")
            }
        case .patroniREST:
            let (status, _) = try httpGet("/health", identity: client, deadline: deadline)
            guard status == 200 else { throw TLSFailure("GET /health answered \(status)") }
        case .postgres:
            try postgres(identity: client, deadline: deadline)
        }
    }

    /// Throws `Stale` when the connection's server presented another leaf than the installed one.
    func compareLeaf(_ connection: TLSClient) throws {
        guard let installedLeaf else { return }
        guard let served = connection.peerCertificate else { throw TLSFailure("the server presented no certificate") }
        guard try served.derEncoded() == installedLeaf.derEncoded() else {
            throw Stale(served: served.serial, installed: installedLeaf.serial)
        }
    }

    /// How a wait ended without a healthy answer.
    public enum WaitFailure: Error, CustomStringConvertible, Sendable {
        /// The service kept answering with another leaf for `staleGrace` (or until the timeout).
        case stale(label: String, Stale, seconds: Int)
        /// Anything else, still failing when the timeout was over.
        case failing(label: String, reason: String, seconds: Int)

        public var description: String {
            switch self {
            case let .stale(label, stale, seconds): "\(label): \(stale) (for \(seconds)s)"
            case let .failing(label, reason, seconds): "\(label): \(reason) (still failing after \(seconds)s)"
            }
        }
    }

    /// Attempts every `interval` until one passes or `timeout` is over; the last failure is thrown
    /// as a `WaitFailure`. A server that answers with a stale leaf in every attempt for
    /// `staleGrace` seconds ends the wait early (`.stale`): it answers, so waiting longer will not
    /// make it read files it already skipped; the caller decides what to run again.
    public func wait(timeout: TimeInterval, staleGrace: TimeInterval? = nil, interval: TimeInterval = 0.5,
                     attemptLimit: TimeInterval = 5) throws {
        let start = Date()
        let end = start.addingTimeInterval(timeout)
        var staleSince: Date?
        while true {
            let deadline = min(end, Date().addingTimeInterval(attemptLimit))
            do {
                try check(deadline: deadline)
                return
            } catch let stale as Stale {
                let since = staleSince ?? Date()
                staleSince = since
                let seconds = Int(Date().timeIntervalSince(since).rounded())
                if let staleGrace, Date().timeIntervalSince(since) >= staleGrace { throw WaitFailure.stale(label: label, stale, seconds: seconds) }
                guard Date().addingTimeInterval(interval) < end else { throw WaitFailure.stale(label: label, stale, seconds: seconds) }
                Thread.sleep(forTimeInterval: interval)
            } catch {
                // Not answering (a restart): a stale answer before it does not count any more.
                staleSince = nil
                guard Date().addingTimeInterval(interval) < end else {
                    throw WaitFailure.failing(label: label, reason: "\(error)", seconds: Int(timeout.rounded()))
                }
                Thread.sleep(forTimeInterval: interval)
            }
        }
    }

    // MARK: - HTTP over TLS

    /// One HTTP/1.1 GET with `Connection: close`: the status code and the body (de-chunked).
    func httpGet(_ path: String, identity: TLSClient.Identity?, deadline: Date) throws -> (Int, Data) {
        let connection = try TLSClient.connect(address: address, port: port, serverName: serverName, trust: trust,
                                               identity: identity, deadline: deadline)
        try compareLeaf(connection)
        let hostHeader = TLSClient.isIPAddress(serverName) && serverName.contains(":") ? "[\(serverName)]" : serverName
        try connection.write(Data("GET \(path) HTTP/1.1\r\nHost: \(hostHeader):\(port)\r\nUser-Agent: chpki-rollout\r\nAccept: */*\r\nConnection: close\r\n\r\n".utf8))
        let answer = try connection.read(limit: Self.answerLimit, enough: Self.isCompleteHTTP)
        return try Self.parseHTTP(answer)
    }

    /// True once the headers and a Content-Length body (or the last chunk) arrived: servers may
    /// keep the connection a while after answering.
    static func isCompleteHTTP(_ data: Data) -> Bool {
        guard let split = data.range(of: Data("\r\n\r\n".utf8)) else { return false }
        let head = String(decoding: data[..<split.lowerBound], as: UTF8.self).lowercased()
        let body = data[split.upperBound...]
        for line in head.split(separator: "\r\n") {
            if line.hasPrefix("content-length:"), let length = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) {
                return body.count >= length
            }
            if line.hasPrefix("transfer-encoding:"), line.contains("chunked") {
                return body.range(of: Data("0\r\n\r\n".utf8)) != nil
            }
        }
        return false
    }

    static func parseHTTP(_ data: Data) throws -> (Int, Data) {
        guard let split = data.range(of: Data("\r\n\r\n".utf8)) else { throw TLSFailure("not an HTTP answer") }
        let head = String(decoding: data[..<split.lowerBound], as: UTF8.self)
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let status = lines.first?.split(separator: " ")
        guard let status, status.count >= 2, status[0].hasPrefix("HTTP/1."), let code = Int(status[1]) else {
            throw TLSFailure("not an HTTP answer")
        }
        var body = Data(data[split.upperBound...])
        let chunked = lines.dropFirst().contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
        if chunked { body = try dechunk(body) }
        if let length = lines.dropFirst().first(where: { $0.lowercased().hasPrefix("content-length:") })
            .flatMap({ Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) }), !chunked, length <= body.count {
            body = body.prefix(length)
        }
        return (code, body)
    }

    static func dechunk(_ data: Data) throws -> Data {
        var out = Data()
        var rest = data[...]
        while true {
            guard let end = rest.range(of: Data("\r\n".utf8)) else { throw TLSFailure("a truncated chunked answer") }
            let sizeText = String(decoding: rest[..<end.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw TLSFailure("a bad chunk size in the answer")
            }
            rest = rest[end.upperBound...]
            if size == 0 { return out }
            guard rest.count >= 2, size <= rest.count - 2 else { throw TLSFailure("a truncated chunked answer") }
            out.append(rest.prefix(size))
            rest = rest.dropFirst(size + 2)
        }
    }

    // MARK: - PostgreSQL

    /// SSLRequest (length 8, code 80877103), 'S', the handshake, then a protocol 3.0 startup
    /// packet for user `chpki_health`: an authentication request or an error other than
    /// 57P03 (cannot connect now) means the server is up and took the client certificate.
    func postgres(identity: TLSClient.Identity?, deadline: Date) throws {
        let connection = try TLSClient.connect(address: address, port: port, serverName: serverName, trust: trust,
                                               identity: identity, deadline: deadline) { socket in
            try socket.write(Data([0, 0, 0, 8, 0x04, 0xD2, 0x16, 0x2F]))
            let answer = try socket.read(1)
            guard answer.first == UInt8(ascii: "S") else { throw TLSFailure("the server does not offer SSL (answered \(answer.first.map { String($0) } ?? "nothing"))") }
        }
        try compareLeaf(connection)
        var parameters = Data()
        for text in ["user", "chpki_health", "database", "postgres", "application_name", "chpki-rollout"] {
            parameters.append(Data(text.utf8))
            parameters.append(0)
        }
        parameters.append(0)
        var packet = Data()
        let length = UInt32(8 + parameters.count)
        packet.append(contentsOf: withUnsafeBytes(of: length.bigEndian, Array.init))
        packet.append(contentsOf: [0, 3, 0, 0])
        packet.append(parameters)
        try connection.write(packet)
        let answer = try connection.read(limit: Self.answerLimit) { $0.count >= 5 && Self.messageComplete($0) }
        guard let type = answer.first else { throw TLSFailure("the server answered nothing to the startup packet") }
        switch type {
        case UInt8(ascii: "R"):
            return
        case UInt8(ascii: "E"):
            let fields = Self.errorFields(answer)
            let code = fields["C"] ?? ""
            if code == "57P03" || code.hasPrefix("08") || code == "57P01" {
                throw TLSFailure("PostgreSQL answers \(code): \(ControlCharacters.escaped(fields["M"] ?? ""))")
            }
        default:
            throw TLSFailure("PostgreSQL answered message type \(type) to the startup packet")
        }
    }

    /// One whole backend message: type byte, then a big-endian length that counts itself.
    static func messageComplete(_ data: Data) -> Bool {
        guard data.count >= 5 else { return false }
        let bytes = [UInt8](data.prefix(5))
        let length = Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
        return data.count >= 1 + length
    }

    /// The fields of an ErrorResponse (`S`everity, `C`ode, `M`essage, ...).
    static func errorFields(_ data: Data) -> [Character: String] {
        var fields: [Character: String] = [:]
        for part in data.dropFirst(5).split(separator: 0) where !part.isEmpty {
            fields[Character(Unicode.Scalar(part.first!))] = String(decoding: part.dropFirst(), as: UTF8.self)
        }
        return fields
    }
}
