import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// Sessions racing on one CA (as concurrent chpki runs would): changes are serialised by the lock,
/// every one of them is recorded and none is lost; a reader sees a batch whole or not at all; and
/// the files after the race are exactly what ca.db says.
@Suite("Concurrent sessions")
struct ConcurrentSessionsTests {
    typealias S = CATestSupport

    static func inventory(_ first: Int, count: Int) throws -> Inventory {
        let hosts = (first..<(first + count)).map { "  - {name: host-\($0).example.com, ips: [10.1.\($0 / 250).\($0 % 250 + 1)], groups: [backend]}" }
        return try S.inventory("""
            domain: example.com
            hosts:
            \(hosts.joined(separator: "\n"))
            services:
              etcd: {hosts: backend, server_cert_mode: server, enable_client: false}
            """)
    }

    @Test("four sessions issuing different hosts at once: all recorded, serials unique, index.txt complete")
    func parallelIssuers() throws {
        let directory = try S.newCA()
        let runs = (0..<4).map { run in
            Background { () -> [SerialNumber] in
                let inventory = try Self.inventory(run * 10, count: 5)
                return try S.issue(directory, inventory).map(\.signed.serial)
            }
        }
        var all: [SerialNumber] = []
        for run in runs {
            guard case let .success(serials)? = run.wait(120) else {
                Issue.record("a run failed or never finished")
                continue
            }
            #expect(serials.count == 5)
            all += serials
        }
        #expect(all.count == 20)
        #expect(Set(all).count == 20)
        try S.withSession(directory, .read) { session throws in
            #expect(Set(try session.validLeaves().map(\.serial)) == Set(all))
        }
        let index = String(decoding: S.read(directory.file(OpenSSLIndex.fileName)) ?? Data(), as: UTF8.self)
        for serial in all { #expect(index.contains(serial.hex)) }
    }

    @Test("a reader racing a change sees none of the batch or all of it")
    func readerSeesWholeBatches() throws {
        let directory = try S.newCA()
        let stop = Flag()
        let partial = Flag()
        let batch = 12
        let reader = Background { () -> Int in
            var reads = 0
            while !stop.isSet {
                let count = try S.withSession(directory, .read) { session in try session.validLeaves().count }
                if count % batch != 0 { partial.set() }
                reads += 1
            }
            return reads
        }
        for round in 0..<3 {
            try S.issue(directory, try Self.inventory(round * 100, count: batch))
        }
        stop.set()
        guard case let .success(reads)? = reader.wait(60) else {
            Issue.record("the reader failed or never stopped")
            return
        }
        #expect(reads > 0)
        #expect(!partial.isSet, "a reader saw part of a batch")
    }

    @Test("a change and a revoke racing: both land, and the files agree with ca.db afterwards")
    func issueAndRevoke() throws {
        let directory = try S.newCA()
        try S.issue(directory, try Self.inventory(0, count: 4))
        let victim = try S.withSession(directory, .read) { session in try session.validLeaves()[0].serial }
        let issue = Background { try S.issue(directory, try Self.inventory(50, count: 6)).count }
        let revoke = Background { try S.withSession(directory) { session in try session.revokeAndPublishCRL([victim]).number } }
        guard case .success(6)? = issue.wait(120), case .success? = revoke.wait(120) else {
            Issue.record("a run failed")
            return
        }
        try S.withSession(directory, .read) { session throws in
            #expect(try session.validLeaves().count == 9)
            #expect(try session.certificates().first { $0.serial == victim }?.status == .revoked)
        }
        // a fresh read finds nothing to recover
        let inode = try FileManager.default.attributesOfItem(atPath: directory.file(OpenSSLIndex.fileName))[.systemFileNumber] as? UInt64
        try S.withSession(directory, .read) { _ in }
        #expect(try FileManager.default.attributesOfItem(atPath: directory.file(OpenSSLIndex.fileName))[.systemFileNumber] as? UInt64 == inode)
        let text = try S.tool(["openssl", "crl", "-in", directory.file(CADirectory.crl), "-noout", "-text"]).output
        #expect(text.uppercased().contains(victim.hex.uppercased()))
    }
}
