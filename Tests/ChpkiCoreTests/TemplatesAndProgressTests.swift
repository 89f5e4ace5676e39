import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiReporting
@testable import ChpkiCA

@Suite("built-in templates and the override directory")
struct TemplatesTests {
    /// The source tree's templates/, found from this file's path (the tests run from the checkout).
    static let sourceDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("templates")

    static func scratch() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chpki-templates-\(UUID())").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test("every templates/*.mustache is compiled in, byte for byte")
    func everySourceTemplateIsBuiltIn() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.sourceDirectory.path)
            .filter { $0.hasSuffix(".mustache") }.map { String($0.dropLast(".mustache".count)) }.sorted()
        #expect(Templates.builtInNames == files)
        for name in files {
            let source = try String(contentsOf: Self.sourceDirectory.appendingPathComponent("\(name).mustache"), encoding: .utf8)
            #expect(Templates.builtInText(name) == source, "\(name)")
        }
    }

    @Test("no override directory: every template is built in, even with the system directory absent")
    func builtInOnly() throws {
        let templates = try Templates(explicit: nil, environment: [:], systemDirectory: "/nonexistent/chpki/templates")
        #expect(templates.overrideDirectory == nil)
        #expect(templates.all.allSatisfy { $0.source == .builtIn })
        let rendered = String(decoding: try templates.render("pg_ident.conf", ["ident_lines": "chpki      patroni@b1  replicator"]),
                              as: UTF8.self)
        #expect(rendered.contains("chpki      patroni@b1  replicator"))
    }

    @Test("--templates beats CHPKI_TEMPLATES, which beats the system directory; overrides replace by name only")
    func precedence() throws {
        let flag = try Self.scratch(), env = try Self.scratch(), system = try Self.scratch()
        defer { for path in [flag, env, system] { try? FileManager.default.removeItem(atPath: path) } }
        for (directory, marker) in [(flag, "flag"), (env, "env"), (system, "system")] {
            try Data("from \(marker)\n".utf8).write(to: URL(fileURLWithPath: Path.join(directory, "minio.tls.mustache")))
        }
        func minio(_ explicit: String?, _ environment: [String: String]) throws -> String {
            String(decoding: try Templates(explicit: explicit, environment: environment, systemDirectory: system).render("minio.tls", [:]),
                   as: UTF8.self)
        }
        #expect(try minio(flag, ["CHPKI_TEMPLATES": env]) == "from flag\n")
        #expect(try minio(nil, ["CHPKI_TEMPLATES": env]) == "from env\n")
        #expect(try minio(nil, ["CHPKI_TEMPLATES": ""]) == "from system\n")
        let templates = try Templates(explicit: flag, environment: [:], systemDirectory: system)
        #expect(try templates.entry(named: "minio.tls").source == .override(path: Path.join(flag, "minio.tls.mustache")))
        #expect(try templates.entry(named: "etcd-tls.env").source == .builtIn)
    }

    @Test("a named directory that is missing, and an override that does not parse, are refused naming them")
    func refusals() throws {
        #expect(throws: ChpkiError.input(.fileMissing, file: "/nonexistent/x", field: "--templates", "no such directory")) {
            try Templates(explicit: "/nonexistent/x", environment: [:])
        }
        let broken = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: broken) }
        try Data("{{#peers}} never closed\n".utf8).write(to: URL(fileURLWithPath: Path.join(broken, "etcd-tls.env.mustache")))
        do {
            _ = try Templates(explicit: broken, environment: [:])
            Issue.record("a template that does not parse was accepted")
        } catch let error as ChpkiError {
            #expect(error.message.hasPrefix(Path.join(broken, "etcd-tls.env.mustache") + ": the template does not parse"))
        }
        #expect(throws: ChpkiError.self) { try Templates(explicit: nil, environment: [:]).entry(named: "no-such") }
    }
}

@Suite("progress line")
struct ProgressTests {
    final class Sink: @unchecked Sendable {
        private let lock = NSLock()
        private var chunks: [String] = []
        func write(_ text: String) { lock.withLock { chunks.append(text) } }
        var text: String { lock.withLock { chunks.joined() } }
    }

    @Test("not a terminal, or --quiet: the ticker prints nothing")
    func silentWhenNotInteractive() {
        for (interactive, quiet) in [(false, false), (true, true)] {
            let sink = Sink()
            let reporter = Reporter(json: false, quiet: quiet, verbose: false, interactive: interactive,
                                    standardOutput: sink.write, standardError: sink.write)
            let ticker = reporter.progress(total: 100, label: "signing certificates")
            for _ in 0..<100 { ticker.advance() }
            ticker.finish()
            #expect(sink.text.isEmpty)
        }
    }

    @Test("on a terminal: redrawn in place at most every 100 ms, then the final count and a newline")
    func redrawsInPlace() {
        let sink = Sink()
        let reporter = Reporter(json: true, quiet: false, verbose: false, interactive: true,
                                standardOutput: { _ in }, standardError: sink.write)
        let ticker = reporter.progress(total: 7001, label: "signing certificates")
        let start = Date()
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for _ in 0..<3500 + worker {
                ticker.advance()
                usleep(200)
            }
        }
        ticker.finish()
        ticker.finish()
        let elapsed = Date().timeIntervalSince(start)
        let frames = sink.text.split(separator: "\r", omittingEmptySubsequences: true)
        #expect(frames.count >= 2, "\(sink.text)")
        #expect(Double(frames.count) <= elapsed * 10 + 2)
        #expect(frames.dropLast().allSatisfy { $0.contains("/7,001") && $0.hasSuffix(" left") })
        #expect(frames.last.map { $0.contains("7,001/7,001") && $0.hasSuffix("s\n") } == true, "\(frames.last ?? "")")
    }

    @Test("counts and durations read at a glance")
    func formatting() {
        #expect(ProgressTicker.grouped(0) == "0")
        #expect(ProgressTicker.grouped(999) == "999")
        #expect(ProgressTicker.grouped(7001) == "7,001")
        #expect(ProgressTicker.grouped(1_234_567) == "1,234,567")
        #expect(ProgressTicker.duration(3.21) == "3.2s")
        #expect(ProgressTicker.duration(42) == "42s")
        #expect(ProgressTicker.duration(221) == "3m41s")
        #expect(ProgressTicker.duration(.infinity) == "?")
    }
}
