import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// RetirementPlan (`issue --prune`): a live leaf the inventory no longer wants is retired as
/// cessationOfOperation; one replaced because its names changed as superseded; one superseded by a
/// renewal, a key change or a rotation (same names) is left to expire; one-offs and leaves of a
/// retired CA never. Then on a real CA: removing a host from the inventory.
@Suite("Retirement plan")
struct RetirementPlanTests {
    typealias P = IssuancePlanTests
    static let live: Set<SerialNumber> = [IssuancePlanTests.issuerA]

    static func retire(_ profiles: [CertificateProfile], live: [IssuedCertificate], oneOffs: Set<SerialNumber> = [],
                       issuers: Set<SerialNumber> = RetirementPlanTests.live) -> RetirementPlan {
        let plan = IssuancePlan(profiles: profiles, existing: live, now: P.now, acceptedIssuers: issuers)
        return RetirementPlan(profiles: profiles, plan: plan, live: live, oneOffs: oneOffs, liveIssuers: issuers)
    }

    @Test("nothing to retire when the inventory still wants every live leaf")
    func nothing() {
        let profiles = [P.profile("node-1.example.com"), P.profile("node-2.example.com")]
        #expect(Self.retire(profiles, live: profiles.map { P.record(for: $0) }).items.isEmpty)
    }

    @Test("a host gone from the inventory: its leaf is retired as cessationOfOperation")
    func goneHost() throws {
        let kept = P.profile("node-1.example.com"), gone = P.profile("node-2.example.com")
        let goneRecord = P.record(for: gone)
        let plan = Self.retire([kept], live: [P.record(for: kept), goneRecord])
        let item = try #require(plan.items.first)
        #expect(plan.items.count == 1)
        #expect(item.certificate.serial == goneRecord.serial)
        #expect(item.reason == .cessationOfOperation)
    }

    @Test("a leaf this run reissues with other names is retired as superseded")
    func renamedThisRun() throws {
        let old = P.profile("node-1.example.com")
        let record = P.record(for: old)
        let plan = Self.retire([P.profile("node-1.example.com", sans: [.dns("node-1.example.com"), .ip([10, 0, 0, 9])])], live: [record])
        let item = try #require(plan.items.first)
        #expect(item.certificate.serial == record.serial)
        #expect(item.reason == .superseded)
    }

    @Test("a leaf reissued for a key change or a rotation names the same: it is not retired")
    func sameNamesNotRetired() {
        let keyChange = Self.retire([P.profile(keyType: .rsa2048)], live: [P.record(for: P.profile(keyType: .ecP256))])
        #expect(keyChange.items.isEmpty)
        let rotated = Self.retire([P.profile()], live: [P.record(for: P.profile(), issuer: P.issuerA)],
                                  issuers: [P.issuerA, P.issuerB])
        #expect(rotated.items.isEmpty)
    }

    @Test("a superseded leaf that names what the inventory no longer does is retired; one with the same names is not")
    func supersededLeaves() {
        let current = P.profile()
        let sameNames = P.record(for: current, status: .superseded)
        let otherNames = P.record(for: P.profile(sans: [.dns("old-name")]), status: .superseded)
        let plan = Self.retire([current], live: [P.record(for: current), sameNames, otherNames])
        #expect(plan.items.map(\.certificate.serial) == [otherNames.serial])
        #expect(plan.items.first?.reason == .superseded)
    }

    @Test("one-offs outside the inventory are never retired as gone")
    func oneOffsKept() {
        let oneOff = P.record(for: P.profile("tool.example.com", kind: .client))
        #expect(Self.retire([], live: [oneOff], oneOffs: [oneOff.serial]).items.isEmpty)
        #expect(Self.retire([], live: [oneOff]).items.count == 1, "the same leaf, not a one-off, is retired")
    }

    @Test("a superseded one-off with other names than its successor is retired")
    func supersededOneOff() {
        let current = P.record(for: P.profile("tool.example.com", kind: .client))
        let older = P.record(for: P.profile("tool.example.com", sans: [.dns("old-tool")], kind: .client), status: .superseded)
        let plan = Self.retire([], live: [current, older], oneOffs: [current.serial, older.serial])
        #expect(plan.items.map(\.certificate.serial) == [older.serial])
    }

    @Test("leaves of a CA that is no longer live (retired) are never retired: no CRL could be signed")
    func retiredIssuer() {
        let gone = P.record(for: P.profile("node-9.example.com"), issuer: P.issuerB)
        #expect(Self.retire([], live: [gone], issuers: [P.issuerA]).items.isEmpty)
    }

    @Test("items are sorted by identity, then serial")
    func sorted() {
        let records = (1...4).reversed().map { P.record(for: P.profile("node-\($0).example.com")) }
        let plan = Self.retire([], live: records)
        #expect(plan.items.map(\.certificate.identity) == records.map(\.identity).sorted())
    }

    @Test("on a real CA: a host removed from the inventory is retired by revoking, and openssl rejects it")
    func onARealCA() throws {
        let directory = try CATestSupport.newCA()
        try CATestSupport.issue(directory, try CATestSupport.inventory())
        let shrunk = try CATestSupport.inventory(CATestSupport.inventoryYAML.replacingOccurrences(
            of: "  - {name: node-3.example.com, ips: [10.0.0.3], groups: [backend]}\n", with: ""))
        let retired = try CATestSupport.withSession(directory) { session throws -> [IssuedCertificate] in
            let profiles = NamingRules.profiles(for: shrunk)
            let plan = try CATestSupport.plan(session, shrunk)
            let retirement = RetirementPlan(profiles: profiles, plan: plan, live: try session.database.liveLeaves(now: session.now),
                                            oneOffs: try session.database.oneOffSerials(), liveIssuers: session.liveAuthoritySerials)
            #expect(!retirement.items.isEmpty)
            #expect(retirement.items.allSatisfy { $0.certificate.host == "node-3.example.com" && $0.reason == .cessationOfOperation })
            try session.revokeAndPublishCRLs(retirement.items.map { ($0.certificate.serial, $0.reason) })
            return retirement.items.map(\.certificate)
        }
        let work = try CATestSupport.temporaryDirectory("retire")
        for leaf in retired {
            let path = try CATestSupport.file(leaf.certificatePEM, named: "\(leaf.serial.hex).pem", in: work)
            #expect(try !CATestSupport.opensslVerifies(leaf: path, trusted: directory.file(CADirectory.rootCertificate),
                                                       untrusted: directory.file(CADirectory.intermediateCertificate),
                                                       crl: directory.file(CADirectory.crl)))
        }
        try CATestSupport.withSession(directory, .read) { session throws in
            #expect(try session.validLeaves().allSatisfy { $0.host != "node-3.example.com" })
        }
    }
}
