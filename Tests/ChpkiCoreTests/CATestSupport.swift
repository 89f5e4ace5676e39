import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChpkiCore
@testable import ChpkiCA
@testable import ChpkiInventory

/// What the CA-level unit tests share: a private temporary directory per test, CAs made through
/// `CAInitializer` (the real path, never a hand-built database), sessions with passphrases from a
/// test environment (never this machine's), an inventory, and the `openssl` CLI as an outside
/// judge of what chpki wrote.
enum CATestSupport {
    static func passphrase(_ text: String) -> Passphrase { try! Passphrase(bytes: Array(text.utf8), source: "test") }
    static let operations = "operations passphrase for unit tests"
    static let rootSecret = "root passphrase for unit tests"

    /// A new empty directory (0700) under the system temporary directory, unique to the caller.
    static func temporaryDirectory(_ label: String) throws -> String {
        let path = NSTemporaryDirectory() + "chpki-\(label)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        return path
    }

    /// A CA made by `CAInitializer`: with an intermediate unless told otherwise; the keys in clear
    /// unless `operations` is given (a passphrase costs one scrypt per open, so tests about
    /// something else stay fast).
    @discardableResult
    static func newCA(at path: String? = nil, intermediate: Bool = true, operations: String? = nil, root: String? = nil,
                      subject: String = "Unit Test Root CA", keyType: KeyType = .ecP256,
                      validity: Period = Period(amount: 2, unit: .years), constraints: NameConstraints? = nil,
                      now: Date = Date()) throws -> CADirectory {
        let directory = CADirectory(path: try path ?? temporaryDirectory("ca") + "/ca")
        _ = try CAInitializer.create(.init(
            directory: directory, subject: DistinguishedName([.init("O", "Unit Tests"), .init("CN", subject)]), keyType: keyType,
            validity: validity, nameConstraints: constraints, intermediate: intermediate, passphrase: operations.map(passphrase),
            rootPassphrase: root.map(passphrase), now: now))
        return directory
    }

    /// The environment a session's passphrase sources read: only what the test gives.
    static func environment(operations: String?, root: String?) -> [String: String] {
        var environment: [String: String] = [:]
        if let operations { environment[PassphraseSource.environmentVariable] = operations }
        if let root { environment[PassphraseSource.rootEnvironmentVariable] = root }
        return environment
    }

    static func open(_ directory: CADirectory, _ access: CASession.Access = .change, operations: String? = nil, root: String? = nil,
                     now: Date = Date(), waiting: @escaping () -> Void = {}) throws -> CASession {
        let environment = environment(operations: operations, root: root)
        return try CASession.open(directory, access: access, passphrase: PassphraseSource(file: nil, environment: environment),
                                  rootPassphrase: .root(file: nil, environment: environment), now: now, waiting: waiting)
    }

    /// Runs `body` on the opened CA; the session (and its lock) ends when `body` returns.
    static func withSession<T>(_ directory: CADirectory, _ access: CASession.Access = .change, operations: String? = nil,
                               root: String? = nil, now: Date = Date(), _ body: (CASession) throws -> T) throws -> T {
        let session = try open(directory, access, operations: operations, root: root, now: now)
        return try withExtendedLifetime(session) { try body(session) }
    }

    static let inventoryYAML = """
        domain: example.com
        subject: {O: MyCompany, C: US}
        hosts:
          - {name: node-1.example.com, ips: [10.0.0.1], groups: [backend]}
          - {name: node-2.example.com, ips: [10.0.0.2], groups: [backend]}
          - {name: node-3.example.com, ips: [10.0.0.3], groups: [backend]}
        services:
          etcd: {hosts: backend, server_cert_mode: both}
        """

    static func inventory(_ yaml: String = inventoryYAML) throws -> Inventory {
        try InventoryReader(path: "cluster.yml").read(yaml: yaml)
    }

    /// The plan `issue` would carry out on `session` for `inventory`.
    static func plan(_ session: CASession, _ inventory: Inventory) throws -> IssuancePlan {
        IssuancePlan(profiles: NamingRules.profiles(for: inventory), existing: try session.validLeaves(), now: session.now,
                     acceptedIssuers: session.currentAuthoritySerials)
    }

    /// Issues everything the inventory wants that is missing or due; returns what was signed.
    @discardableResult
    static func issue(_ directory: CADirectory, _ inventory: Inventory, operations: String? = nil, now: Date = Date()) throws
        -> [BatchIssuer.Issued] {
        try withSession(directory, operations: operations, now: now) { session in
            try session.issue(try plan(session, inventory).work)
        }
    }

    static func read(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    static func write(_ text: String, to path: String, mode: Int = 0o600) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    static func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? nil
    }

    static func names(in path: String) -> Set<String> {
        Set((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
    }

    /// Runs a tool found on PATH without a shell; its exit status and what it printed (stdout and stderr).
    static func tool(_ arguments: [String], in directory: String? = nil, input: Data? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(input) }
        try stdin.fileHandleForWriting.close()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    /// `openssl verify` of `leaf` against `trusted` (and `untrusted` intermediates); true when it says OK.
    static func opensslVerifies(leaf: String, trusted: String, untrusted: String? = nil, crl: String? = nil,
                                extra: [String] = []) throws -> Bool {
        var arguments = ["openssl", "verify", "-CAfile", trusted]
        if let untrusted { arguments += ["-untrusted", untrusted] }
        if let crl { arguments += ["-crl_check", "-CRLfile", crl] }
        arguments += extra + [leaf]
        let (status, output) = try tool(arguments)
        return status == 0 && output.contains(": OK")
    }

    /// Writes `text` into a new file of `directory`, returns its path.
    static func file(_ text: String, named name: String, in directory: String) throws -> String {
        let path = directory + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The error's kind when `body` throws a ChpkiError, else nil (and the test fails).
    static func refusal(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> ChpkiError? {
        do {
            try body()
            Issue.record("expected a refusal, got success", sourceLocation: sourceLocation)
            return nil
        } catch let error as ChpkiError {
            return error
        } catch {
            Issue.record("expected a ChpkiError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }
}

/// Another process holding a flock(2) on a directory (`flock(1)` from util-linux, in scripts/test's
/// list): what a second chpki run looks like to this one. The lock is held until `release()`.
final class LockHolder {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()

    /// Returns once the child holds the lock (it says so on stdout).
    init(_ directory: String, shared: Bool = false) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // The child locks the directory, says "locked", then holds the lock while `cat` waits on our pipe.
        process.arguments = ["flock", shared ? "-s" : "-x", directory, "sh", "-c", "echo locked; exec cat >/dev/null"]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        var said = Data()
        while !said.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            said.append(chunk)
        }
        guard String(decoding: said, as: UTF8.self).hasPrefix("locked") else {
            throw ChpkiError(.internalBug, "the lock holder did not start: \(String(decoding: said, as: UTF8.self))")
        }
    }

    var processIdentifier: Int32 { process.processIdentifier }

    /// Ends the child (closing its stdin ends `cat`, then flock exits and the kernel drops the lock).
    func release() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    /// Kills the child without letting it clean up: the kernel still drops the lock.
    func kill() {
        Glibc.kill(process.processIdentifier, SIGKILL)
        // flock(1)'s child (`cat`) inherited the lock; closing its stdin ends it too.
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { release() }
    }
}

/// Runs `body` on another thread; `finished` tells whether it returned within `seconds`, and
/// `result` its outcome once it did. For operations that block (a lock another process holds).
final class Background<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var outcome: Result<T, Error>?

    init(_ body: @escaping () throws -> T) {
        // The body runs on exactly one other thread, and the test reads its result only after it ended.
        nonisolated(unsafe) let body = body
        Thread.detachNewThread { [self] in
            let result = Result { try body() }
            lock.withLock { outcome = result }
            done.signal()
        }
    }

    /// Waits up to `seconds` for `body` to return.
    func wait(_ seconds: Double) -> Result<T, Error>? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        done.signal()  // later waits return at once
        return lock.withLock { outcome }
    }
}

/// A flag set from any thread (a `waiting` callback), read by the test.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func set() { lock.withLock { count += 1 } }
    var isSet: Bool { lock.withLock { count > 0 } }
    var times: Int { lock.withLock { count } }
}
