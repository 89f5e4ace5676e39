import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// IssuancePlan, the decision `issue` and `renew` act on: a profile without a valid certificate is
/// issued; a changed profile is reissued (keeping the key unless the key type changed); a leaf of
/// a CA no longer current is reissued with its key; a leaf within renew_before (or expired) is
/// renewed with its key; anything else is unchanged. Revoked and superseded rows never count.
@Suite("Issuance plan")
struct IssuancePlanTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let day: TimeInterval = 86_400
    static let issuerA = SerialNumber(hex: "0A" + String(repeating: "11", count: 15))!
    static let issuerB = SerialNumber(hex: "0B" + String(repeating: "22", count: 15))!

    static func profile(_ host: String = "node-1.example.com", keyType: KeyType = .ecP256, sans: [GeneralName]? = nil,
                        eku: [ExtendedKeyUsage] = [.serverAuth], cn: String? = nil, kind: CertificateKind = .server,
                        renewBefore: Period = Period(amount: 30, unit: .days)) -> CertificateProfile {
        CertificateProfile(identity: CertificateIdentity(kind: kind, host: host, service: "etcd", name: host),
                           subject: DistinguishedName([.init("O", "Acme"), .init("CN", cn ?? host)]),
                           subjectAlternativeNames: sans ?? [.dns(host), .ip([10, 0, 0, 1])], extendedKeyUsage: eku, keyType: keyType,
                           validity: Period(amount: 90, unit: .days), renewBefore: renewBefore)
    }

    static func record(for profile: CertificateProfile, expiresIn seconds: TimeInterval = 80 * 86_400, status: CertificateStatus = .valid,
                       issuer: SerialNumber? = issuerA, storedProfile: CertificateProfile.Essentials?? = .none) -> IssuedCertificate {
        IssuedCertificate(serial: try! SerialNumber.random(), kind: profile.identity.kind, host: profile.identity.host,
                          service: profile.identity.service, name: profile.identity.name, subject: profile.subject.rfc4514,
                          subjectOneLine: "", subjectAlternativeNames: profile.subjectAlternativeNames,
                          profile: storedProfile ?? profile.essentials, keyType: profile.keyType, issuerSerial: issuer,
                          notBefore: now.addingTimeInterval(-10 * day), notAfter: now.addingTimeInterval(seconds), status: status,
                          revocation: nil, supersededBy: nil, authorityRole: nil, certificatePEM: "")
    }

    static func single(_ profile: CertificateProfile, _ existing: [IssuedCertificate], accepted: Set<SerialNumber>? = nil) -> IssuancePlan.Item {
        IssuancePlan(profiles: [profile], existing: existing, now: now, acceptedIssuers: accepted).items[0]
    }

    @Test("no certificate: issued, with a new key")
    func newProfile() {
        let item = Self.single(Self.profile(), [])
        #expect(item.action == .issued)
        #expect(item.previous == nil)
        #expect(!item.keepsKey)
    }

    @Test("a valid, current, unchanged certificate: unchanged, and it is the previous one")
    func unchanged() {
        let profile = Self.profile()
        let existing = Self.record(for: profile)
        let item = Self.single(profile, [existing])
        #expect(item.action == .unchanged)
        #expect(item.previous?.serial == existing.serial)
    }

    @Test("revoked and superseded rows do not count: issued", arguments: [CertificateStatus.revoked, .superseded])
    func onlyValidCount(status: CertificateStatus) {
        let profile = Self.profile()
        #expect(Self.single(profile, [Self.record(for: profile, status: status)]).action == .issued)
    }

    @Test("renew_before is the edge: due at it, not a second earlier")
    func renewEdge() {
        let profile = Self.profile()
        #expect(Self.single(profile, [Self.record(for: profile, expiresIn: 30 * Self.day)]).action == .renewed)
        #expect(Self.single(profile, [Self.record(for: profile, expiresIn: 30 * Self.day + 1)]).action == .unchanged)
    }

    @Test("renewed and expired certificates keep their key")
    func renewKeepsKey() {
        let profile = Self.profile()
        let due = Self.single(profile, [Self.record(for: profile, expiresIn: 5 * Self.day)])
        #expect(due.action == .renewed && due.keepsKey)
        let expired = Self.single(profile, [Self.record(for: profile, expiresIn: -5 * Self.day)])
        #expect(expired.action == .renewed && expired.keepsKey)
        #expect(expired.reason.hasPrefix("expired"))
    }

    @Test("a change of SANs, subject or usages reissues, keeping the key")
    func reissueKeepsKey() {
        let base = Self.profile()
        let existing = Self.record(for: base)
        for changed in [Self.profile(sans: [.dns("node-1.example.com")]), Self.profile(cn: "other"), Self.profile(eku: [.serverAuth, .clientAuth])] {
            let item = Self.single(changed, [existing])
            #expect(item.action == .reissued, "\(changed.essentials)")
            #expect(item.keepsKey)
            #expect(item.previous?.serial == existing.serial)
        }
    }

    @Test("a key type change reissues with a new key")
    func keyTypeChange() {
        let existing = Self.record(for: Self.profile(keyType: .ecP256))
        let item = Self.single(Self.profile(keyType: .rsa2048), [existing])
        #expect(item.action == .reissued)
        #expect(!item.keepsKey)
        #expect(item.reason.contains("ec-p256") && item.reason.contains("rsa-2048"))
    }

    @Test("the order of SANs does not matter; their set does")
    func sanOrder() {
        let sans: [GeneralName] = [.dns("a"), .dns("b"), .ip([10, 0, 0, 1])]
        let existing = Self.record(for: Self.profile(sans: sans))
        #expect(Self.single(Self.profile(sans: sans.reversed()), [existing]).action == .unchanged)
        #expect(Self.single(Self.profile(sans: sans + [.dns("c")]), [existing]).action == .reissued)
    }

    @Test("a row without a stored profile (imported) is compared by date only")
    func noStoredProfile() {
        let profile = Self.profile()
        #expect(Self.single(Self.profile(cn: "changed"), [Self.record(for: profile, storedProfile: .some(nil))]).action == .unchanged)
    }

    @Test("a leaf of a CA no longer accepted is reissued with its key ('CA rotated'); any accepted one stays")
    func acceptedIssuers() {
        let profile = Self.profile()
        let item = Self.single(profile, [Self.record(for: profile, issuer: Self.issuerA)], accepted: [Self.issuerB])
        #expect(item.action == .reissued && item.keepsKey && item.reason == "CA rotated")
        #expect(Self.single(profile, [Self.record(for: profile, issuer: Self.issuerA)], accepted: [Self.issuerA, Self.issuerB]).action == .unchanged)
        // without the set nothing is judged by issuer
        #expect(Self.single(profile, [Self.record(for: profile, issuer: Self.issuerA)], accepted: nil).action == .unchanged)
    }

    @Test("a profile change wins over a rotation and over a due renewal")
    func precedence() {
        let existing = Self.record(for: Self.profile(), expiresIn: Self.day, issuer: Self.issuerA)
        let item = Self.single(Self.profile(cn: "changed"), [existing], accepted: [Self.issuerB])
        #expect(item.action == .reissued)
        #expect(item.reason != "CA rotated")
    }

    @Test("authority rows are never previous certificates of a leaf")
    func authoritiesIgnored() {
        let profile = Self.profile()
        var authority = Self.record(for: profile)
        authority.kind = .intermediate
        #expect(Self.single(profile, [authority]).action == .issued)
    }

    @Test("items come in the profiles' order; work leaves out the unchanged ones")
    func orderAndWork() {
        let profiles = (1...5).map { Self.profile("node-\($0).example.com") }
        let existing = [Self.record(for: profiles[1]), Self.record(for: profiles[3], expiresIn: Self.day)]
        let plan = IssuancePlan(profiles: profiles, existing: existing, now: Self.now)
        #expect(plan.items.map(\.profile.identity) == profiles.map(\.identity))
        #expect(plan.items.map(\.action) == [.issued, .unchanged, .issued, .renewed, .issued])
        #expect(plan.work.map(\.profile.identity.host) == ["node-1.example.com", "node-3.example.com", "node-4.example.com", "node-5.example.com"])
    }

    @Test("renamedIdentities: reissued with other names, not a key change or a rotation")
    func renamedIdentities() {
        let a = Self.profile("node-1.example.com"), b = Self.profile("node-2.example.com"), c = Self.profile("node-3.example.com")
        let existing = [Self.record(for: a), Self.record(for: Self.profile("node-2.example.com", keyType: .rsa2048)),
                        Self.record(for: c, issuer: Self.issuerA)]
        let plan = IssuancePlan(profiles: [Self.profile("node-1.example.com", sans: [.dns("renamed")]), b, c], existing: existing,
                                now: Self.now, acceptedIssuers: [Self.issuerB])
        #expect(plan.items.map(\.action) == [.reissued, .reissued, .reissued])
        #expect(plan.renamedIdentities == [a.identity])
    }

    @Test("the same identity in two kinds (server and client of one host) are planned apart")
    func identitiesByKind() {
        let server = Self.profile(kind: .server), client = Self.profile(eku: [.clientAuth], kind: .client)
        let plan = IssuancePlan(profiles: [server, client], existing: [Self.record(for: server)], now: Self.now)
        #expect(plan.items.map(\.action) == [.unchanged, .issued])
    }

    @Test("on a real CA: a first plan issues everything; after issuing, nothing; a changed inventory reissues the changed host only")
    func onARealCA() throws {
        let directory = try CATestSupport.newCA()
        let inventory = try CATestSupport.inventory()
        try CATestSupport.withSession(directory, .read) { session throws in
            #expect(try CATestSupport.plan(session, inventory).items.allSatisfy { $0.action == .issued })
        }
        try CATestSupport.issue(directory, inventory)
        let changed = try CATestSupport.inventory(CATestSupport.inventoryYAML.replacingOccurrences(of: "ips: [10.0.0.2]", with: "ips: [10.0.0.2, 10.0.0.22]"))
        try CATestSupport.withSession(directory, .read) { session throws in
            #expect(try CATestSupport.plan(session, inventory).work.isEmpty)
            let plan = try CATestSupport.plan(session, changed)
            #expect(!plan.work.isEmpty)
            #expect(plan.work.allSatisfy { $0.profile.identity.host == "node-2.example.com" && $0.action == .reissued && $0.keepsKey })
        }
    }
}
