import Foundation
import GRDB
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// Issuance as it is recorded: the batch issuer hands leaves over in plan order while it signs, the
/// database records them in one transaction that a failure anywhere rolls back whole, and rows that
/// do not decode are errors naming them.
@Suite("Issuance recording")
struct IssuanceRecordingTests {
    struct Boom: Error, Equatable {}

    static func items(_ count: Int) -> [IssuancePlan.Item] {
        (0..<count).map { index in
            let host = "node-\(index).example.com"
            let profile = CertificateProfile(
                identity: CertificateIdentity(kind: .server, host: host, service: "etcd", name: host),
                subject: DistinguishedName([.init("CN", host)]), subjectAlternativeNames: [.dns(host)],
                extendedKeyUsage: [.serverAuth], keyType: .ecP256, validity: Period(amount: 30, unit: .days),
                renewBefore: Period(amount: 7, unit: .days))
            return IssuancePlan.Item(profile: profile, action: .issued, reason: "test", previous: nil, keepsKey: false)
        }
    }

    static func sign(_ fixture: CADatabaseTests.Fixture, _ items: [IssuancePlan.Item], failAt: Int? = nil,
                     record: (CADatabase.LeafRow) throws -> Void) throws -> [BatchIssuer.Issued] {
        let signer = Signer(certificate: fixture.intermediate, key: fixture.intermediateKey)
        let now = Date()
        let issuer = fixture.intermediate.serial
        return try BatchIssuer.sign(items, signer: signer, issuerNotAfter: fixture.intermediate.notAfter, previousKeys: [:], now: now,
                                    workers: 2, finish: { leaf in
            if leaf.item.profile.identity.host == failAt.map({ "node-\($0).example.com" }) { throw Boom() }
            return (leaf, try CADatabase.LeafRow(.init(signed: leaf.signed, profile: leaf.item.profile, issuerSerial: issuer,
                                                       key: .clear(leaf.key), supersedes: nil), now: now))
        }, record: { try record($0.1) }).map(\.0)
    }

    @Test("leaves are recorded in plan order while they are signed, all in one transaction")
    func recordsInOrder() throws {
        let fixture = try CADatabaseTests.fixture()
        let items = Self.items(40)
        var issued: [BatchIssuer.Issued] = []
        try fixture.database.recordIssued(now: Date()) { record in
            issued = try Self.sign(fixture, items, record: record)
        }
        #expect(issued.map(\.item.profile.identity) == items.map(\.profile.identity))
        let stored = try fixture.database.validLeaves()
        #expect(stored.map(\.serial) == issued.map(\.signed.serial))
        #expect(stored.map(\.host) == items.map(\.profile.identity.host))
    }

    @Test("a signing failure, or a recording failure, leaves the database as it was")
    func failureRollsBack() throws {
        let fixture = try CADatabaseTests.fixture()
        #expect(throws: Boom()) {
            try fixture.database.recordIssued(now: Date()) { record in _ = try Self.sign(fixture, Self.items(30), failAt: 17, record: record) }
        }
        #expect(try fixture.database.validLeaves().isEmpty)
        var recorded = 0
        #expect(throws: Boom()) {
            try fixture.database.recordIssued(now: Date()) { record in
                _ = try Self.sign(fixture, Self.items(30)) { row in
                    recorded += 1
                    if recorded == 10 { throw Boom() }
                    try record(row)
                }
            }
        }
        #expect(try fixture.database.validLeaves().isEmpty)
        // The database is usable after a failed batch.
        try fixture.database.recordIssued(now: Date()) { record in _ = try Self.sign(fixture, Self.items(3), record: record) }
        #expect(try fixture.database.validLeaves().count == 3)
    }

    static func corrupt(_ fixture: CADatabaseTests.Fixture, _ sql: String) throws {
        try fixture.database.change({ _ in "a corruption for a test" }) { db in try db.execute(sql: sql) }
    }

    @Test("an undecodable row is an error naming it, for every read of it")
    func undecodableRows() throws {
        for (sql, column) in [
            ("UPDATE certificates SET sans = 'not json' WHERE kind = 'server'", "sans"),
            ("UPDATE certificates SET profile = '{' WHERE kind = 'server'", "profile"),
            ("UPDATE certificates SET not_after = 'someday' WHERE kind = 'server'", "not_after"),
            ("UPDATE certificates SET issuer_serial = 'zz' WHERE kind = 'server'", "issuer_serial"),
        ] {
            let fixture = try CADatabaseTests.fixture()
            try fixture.database.recordIssued([try CADatabaseTests.leaf(fixture, host: "node-1.example.com")], now: Date())
            try Self.corrupt(fixture, sql)
            let error = try #require(throws: ChpkiError.self) { try fixture.database.validLeaves() }
            #expect(error.description.contains("certificates.serial="), "\(column): \(error)")
            #expect(error.description.contains(column), "\(column): \(error)")
        }
        // index.txt is refused, not written with a row read as valid.
        let fixture = try CADatabaseTests.fixture()
        try fixture.database.recordIssued([try CADatabaseTests.leaf(fixture, host: "node-1.example.com")], now: Date())
        try Self.corrupt(fixture, "UPDATE certificates SET serial = 'not hex' WHERE kind = 'server'")
        #expect(throws: ChpkiError.self) { try fixture.database.indexEntries() }
        try Self.corrupt(fixture, "UPDATE certificates SET issuer_serial = 'zz' WHERE kind = 'server'")
        #expect(throws: ChpkiError.self) { try fixture.database.leafIssuers() }
    }

    @Test("reads select by the enums: valid leaves, live leaves, authorities, one-offs")
    func readsByEnums() throws {
        let fixture = try CADatabaseTests.fixture()
        let first = try CADatabaseTests.leaf(fixture, host: "node-1.example.com")
        var oneOff = try CADatabaseTests.leaf(fixture, host: "node-2.example.com")
        oneOff.oneOff = true
        try fixture.database.recordIssued([first, oneOff], now: Date())
        let second = try CADatabaseTests.leaf(fixture, host: "node-1.example.com", supersedes: first.signed.serial)
        try fixture.database.recordIssued([second], now: Date())
        #expect(Set(try fixture.database.validLeaves().map(\.serial)) == [second.signed.serial, oneOff.signed.serial])
        #expect(Set(try fixture.database.liveLeaves(now: Date()).map(\.serial)) == [first.signed.serial, second.signed.serial, oneOff.signed.serial])
        #expect(try fixture.database.oneOffSerials() == [oneOff.signed.serial])
        #expect(try fixture.database.authorities().map(\.kind) == [.root, .intermediate])
        #expect(try fixture.database.leafIssuers() == [fixture.intermediate.serial])
        #expect(try fixture.database.indexEntries().count == 4)  // the intermediate and three leaves, not the root
    }
}

/// The issuing intermediate, one template for init-ca, growth and rotate-ca.
@Suite("Issuing intermediate")
struct IssuingIntermediateTests {
    @Test("pathlen 0, keyCertSign and cRLSign, the constraints, backdated, never past the root")
    func template() throws {
        let now = Date()
        let rootNotAfter = now.addingTimeInterval(86400 * 10)
        let constraints = NameConstraints(permitted: [.dns("example.com")])
        let template = try IssuingIntermediate.template(subject: DistinguishedName([.init("CN", "X")]), now: now,
                                                        rootNotAfter: rootNotAfter, constraints: constraints)
        #expect(template.certificateAuthority == .init(pathLength: 0))
        #expect(template.keyUsage == [.keyCertSign, .cRLSign])
        #expect(template.nameConstraints == constraints)
        #expect(template.notBefore == now.addingTimeInterval(-CAInitializer.backdating))
        #expect(template.notAfter == rootNotAfter)
        let long = try IssuingIntermediate.template(subject: DistinguishedName([.init("CN", "X")]), now: now,
                                                    rootNotAfter: now.addingTimeInterval(86400 * 365 * 30), constraints: nil)
        #expect(long.notAfter == IssuingIntermediate.validity.after(now))
    }

    @Test("the first intermediate's subject is the root's with ' Intermediate' after the CN, at most 64 characters")
    func subject() {
        let root = DistinguishedName([.init("O", "Org"), .init("CN", "Cinc Root CA")])
        #expect(IssuingIntermediate.subject(below: root).commonName == "Cinc Root CA Intermediate")
        #expect(IssuingIntermediate.subject(below: root).attributes.first?.value == "Org")
        let long = DistinguishedName([.init("CN", String(repeating: "r", count: 60))])
        #expect(IssuingIntermediate.subject(below: long).commonName?.count == 64)
    }

    @Test("signed by the root: a P-256 key, a certificate that chains to it")
    func signs() throws {
        let fixture = try CADatabaseTests.fixture()
        let (key, certificate) = try IssuingIntermediate.sign(subject: DistinguishedName([.init("CN", "Next")]), now: Date(),
                                                              constraints: nil, by: Signer(certificate: fixture.root, key: fixture.rootKey))
        #expect(key.keyType == IssuingIntermediate.keyType)
        #expect(certificate.notAfter <= fixture.root.notAfter)
        #expect(certificate.subject.commonName == "Next")
    }
}

/// One loopback rule: 127.0.0.0/8 and ::1.
@Suite("Loopback")
struct LoopbackTests {
    @Test("all of 127.0.0.0/8 and ::1 are loopback; nothing else is")
    func rule() {
        for text in ["127.0.0.1", "127.1.2.3", "127.255.255.254", "::1"] { #expect(IPAddress(text)?.isLoopback == true, "\(text)") }
        for text in ["128.0.0.1", "10.0.0.1", "::2", "::", "::ffff:127.0.0.1", "fe80::1"] { #expect(IPAddress(text)?.isLoopback == false, "\(text)") }
        #expect(ClusterFacts.isLoopback("localhost") && ClusterFacts.isLoopback("127.0.0.2") && !ClusterFacts.isLoopback("node-1"))
        #expect(IPAddress.loopbackNetworks.map(\.prefixLength) == [8, 128])
    }
}

/// What the signing path writes by hand is byte for byte what OpenSSL and Foundation would write.
@Suite("Hand-written encodings")
struct HandWrittenEncodingTests {
    @Test("an EC key's PKCS#8 PEM is OpenSSL's, for P-256 and P-384; other keys are left to OpenSSL")
    func pkcs8() throws {
        for type in [KeyType.ecP256, .ecP384] {
            for _ in 0..<20 {
                let key = try PrivateKey.generate(type)
                let mine = try #require(try key.ecPKCS8PEM())
                #expect(mine.data == (try key.pkcs8PEM()), "\(type)")
            }
        }
        #expect(try PrivateKey.generate(.ed25519).ecPKCS8PEM() == nil)
    }

    @Test("JSON of SANs and of the profile's essentials is JSONEncoder's (sorted keys)")
    func json() throws {
        let cases: [CertificateProfile.Essentials] = [
            .init(subject: "CN=node-1.example.com,O=Org", sans: ["DNS:a.example.com", "IP:10.0.0.1", "IP:::1"], eku: ["serverAuth", "clientAuth"], key: "ec-p256"),
            .init(subject: "CN=a\\,b/c \"q\"", sans: ["URI:https://x/y"], eku: [], key: "rsa-2048"),
            .init(subject: "CN=\u{e9}t\u{e9}", sans: [], eku: ["serverAuth"], key: "ed25519"),
        ]
        for essentials in cases {
            #expect(try CADatabase.essentialsJSON(essentials) == (try CADatabase.json(essentials)))
            #expect(try CADatabase.stringsJSON(essentials.sans) == (try CADatabase.json(essentials.sans)))
        }
    }

    @Test("dates are stored as GRDB stores them")
    func dates() {
        for seconds in [0.0, 1_700_000_000, 1_799_999_999, 4_102_444_800, 1_700_000_000.25] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(CADatabase.storedDate(date) == date.databaseValue, "\(seconds)")
        }
    }
}
