import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// Growth on an opened CA (CASession+Growth, IssuingAuthorities): an inventory that outgrows the
/// intermediate's name constraints gets a new intermediate signed by the root, recorded with its
/// leaves in one transaction; the older intermediate stays current and its leaves stay valid; a
/// root that carries the constraints refuses; and every live CA with leaves publishes its CRL.
@Suite("CA session growth")
struct CASessionGrowthTests {
    typealias S = CATestSupport

    static let grownYAML = S.inventoryYAML.replacingOccurrences(of: "services:", with: """
          - {name: node-4.example.com, ips: [192.168.7.4], groups: [backend]}
        services:
        """)

    /// A CA whose intermediate is constrained to the base inventory, with its leaves issued.
    static func constrainedCA(operations: String? = nil, root: String? = nil) throws -> CADirectory {
        let inventory = try S.inventory()
        let directory = try S.newCA(operations: operations, root: root, constraints: NameConstraintsPolicy.constraints(for: inventory))
        try S.issue(directory, inventory, operations: operations)
        return directory
    }

    static func decide(_ session: CASession, _ inventory: Inventory) throws -> IssuingAuthorities.Decision {
        try IssuingAuthorities.decide(session, profiles: NamingRules.profiles(for: inventory), inventory: inventory, live: [], source: inventory.path)
    }

    /// What `issue` does: grow when the decision says so.
    @discardableResult
    static func issueGrowing(_ directory: CADirectory, _ inventory: Inventory, operations: String? = nil, root: String? = nil)
        throws -> (Certificate?, [BatchIssuer.Issued]) {
        try S.withSession(directory, operations: operations, root: root) { session in
            let work = try S.plan(session, inventory).work
            if case let .newIntermediate(constraints, _) = try decide(session, inventory) {
                let grown = try session.issue(work, growingWith: constraints)
                return (grown.intermediate, grown.issued)
            }
            return (nil, try session.issue(work))
        }
    }

    @Test("the same inventory is covered; a host outside the constraints asks for a new intermediate naming what is uncovered")
    func decision() throws {
        let directory = try Self.constrainedCA()
        try S.withSession(directory, .read) { session throws in
            guard case .covered = try Self.decide(session, try S.inventory()) else {
                Issue.record("the inventory the CA was made for is not covered")
                return
            }
            guard case let .newIntermediate(constraints, uncovered) = try Self.decide(session, try S.inventory(Self.grownYAML)) else {
                Issue.record("a host outside the constraints is covered")
                return
            }
            #expect(uncovered.contains(.dns("node-4")))
            #expect(uncovered.contains(.ip([192, 168, 7, 4])))
            let check = NameConstraintsCheck(constraints)
            #expect(check.isPermitted(.dns("node-4")) && check.isPermitted(.ip([192, 168, 7, 4])))
            #expect(check.isPermitted(.dns("node-1.example.com")), "the new intermediate covers the whole inventory")
        }
    }

    @Test("a CA without constraints is always covered")
    func unconstrainedCovered() throws {
        let directory = try S.newCA()
        try S.withSession(directory, .read) { session throws in
            guard case .covered = try Self.decide(session, try S.inventory(Self.grownYAML)) else {
                Issue.record("an unconstrained CA asked for growth")
                return
            }
        }
    }

    @Test("a root that carries the constraints refuses what it does not cover (only a new root could)")
    func rootConstraintsRefuse() throws {
        let inventory = try S.inventory()
        let directory = try S.newCA(intermediate: false, constraints: NameConstraintsPolicy.constraints(for: inventory))
        try S.withSession(directory, .read) { session throws in
            let error = S.refusal { _ = try Self.decide(session, try S.inventory(Self.grownYAML)) }
            #expect(error?.kind == .refused)
            #expect(error?.file == "cluster.yml")
            #expect(error?.field == "node-4.example.com")
        }
    }

    @Test("growth: a new intermediate signed by the root, the new leaves under it, openssl verifies the new leaf")
    func growth() throws {
        let directory = try Self.constrainedCA()
        let (oldRoot, oldIntermediate) = try S.withSession(directory, .read) { session in (session.root, session.issuingCertificate) }
        let (grown, issued) = try Self.issueGrowing(directory, try S.inventory(Self.grownYAML))
        let intermediate = try #require(grown)
        #expect(intermediate.isSigned(by: oldRoot))
        #expect(intermediate.pathLength == 0)
        #expect(intermediate.subject != oldIntermediate.subject)
        #expect(intermediate.subject.attributes.last?.value.hasSuffix(" G2") == true)
        #expect(!issued.isEmpty)
        #expect(issued.allSatisfy { (try? Certificate(pem: Data($0.signed.pem.utf8)).isSigned(by: intermediate)) == true })
        // crl.pem holds a CRL of the new issuing CA (first) beside the old one's, with no revoke in between
        let crls = String(decoding: S.read(directory.file(CADirectory.crl)) ?? Data(), as: UTF8.self)
        #expect(crls.components(separatedBy: "-----BEGIN X509 CRL-----").count - 1 == 2)
        let newLeaf = try #require(issued.first { $0.item.profile.identity.host == "node-4.example.com" })
        let work = try S.temporaryDirectory("growth")
        let leaf = try S.file(newLeaf.signed.pem, named: "leaf.pem", in: work)
        #expect(try S.opensslVerifies(leaf: leaf, trusted: directory.file(CADirectory.rootCertificate),
                                      untrusted: directory.file(CADirectory.intermediateCertificate), crl: directory.file(CADirectory.crl)))
        // the old intermediate would not do: its constraints exclude the new names
        let old = try S.file(String(decoding: try oldIntermediate.pemEncoded(), as: UTF8.self), named: "old.pem", in: work)
        #expect(try !S.opensslVerifies(leaf: leaf, trusted: directory.file(CADirectory.rootCertificate), untrusted: old))
    }

    @Test("after growth both intermediates are current; the older one is a file of its own and its leaves stay valid")
    func afterGrowth() throws {
        let directory = try Self.constrainedCA()
        let oldLeaves = try S.withSession(directory, .read) { session in try session.validLeaves() }
        let oldIntermediate = try S.withSession(directory, .read) { session in session.issuing.serial }
        let (grown, _) = try Self.issueGrowing(directory, try S.inventory(Self.grownYAML))
        try S.withSession(directory, .read) { session throws in
            #expect(session.issuing.serial == grown?.serial)
            #expect(session.currentAuthoritySerials.contains(oldIntermediate))
            #expect(session.currentAuthoritySerials.count == 3)
            let valid = Set(try session.validLeaves().map(\.serial))
            #expect(Set(oldLeaves.map(\.serial)).isSubset(of: valid), "growth reissued leaves the old intermediate covers")
            // nothing is due afterwards
            #expect(try S.plan(session, try S.inventory(Self.grownYAML)).work.isEmpty)
        }
        #expect(S.exists(directory.file(CAFiles.olderIntermediateName(oldIntermediate))))
        #expect(S.read(directory.file(CADirectory.intermediateCertificate)) == (try grown?.pemEncoded()))
        // an old leaf still verifies through the older intermediate's own file
        let work = try S.temporaryDirectory("growth-old")
        let leaf = try S.file(oldLeaves[0].certificatePEM, named: "leaf.pem", in: work)
        #expect(try S.opensslVerifies(leaf: leaf, trusted: directory.file(CADirectory.rootCertificate),
                                      untrusted: directory.file(CAFiles.olderIntermediateName(oldIntermediate))))
    }

    @Test("growth on a split CA needs the root passphrase; without it nothing is signed or recorded")
    func growthNeedsRoot() throws {
        let directory = try Self.constrainedCA(operations: S.operations, root: S.rootSecret)
        let before = try S.withSession(directory, .read, operations: S.operations) { session in try session.certificates().count }
        let error = S.refusal { try Self.issueGrowing(directory, try S.inventory(Self.grownYAML), operations: S.operations, root: "wrong root passphrase") }
        #expect(error?.kind == .refused)
        try S.withSession(directory, .read, operations: S.operations) { session throws in
            #expect(try session.certificates().count == before)
        }
        let (grown, _) = try Self.issueGrowing(directory, try S.inventory(Self.grownYAML), operations: S.operations, root: S.rootSecret)
        #expect(grown != nil)
        // the new intermediate's key is under the operations passphrase, like every issuing key
        try S.withSession(directory, .read, operations: S.operations) { session throws in
            try session.unlockOperations()
            #expect(session.issuing.serial == grown?.serial)
        }
    }

    @Test("revoking publishes one CRL per live CA with leaves, the issuing one first; openssl enforces each")
    func crlPerIssuer() throws {
        let directory = try Self.constrainedCA()
        let oldLeaf = try S.withSession(directory, .read) { session in try session.validLeaves()[0] }
        let (grown, issued) = try Self.issueGrowing(directory, try S.inventory(Self.grownYAML))
        let newLeaf = try #require(issued.first)
        try S.withSession(directory) { session throws in
            _ = try session.revokeAndPublishCRLs([(oldLeaf.serial, .superseded), (newLeaf.signed.serial, .keyCompromise)])
        }
        let crls = String(decoding: S.read(directory.file(CADirectory.crl))!, as: UTF8.self)
        let blocks = crls.components(separatedBy: "-----END X509 CRL-----").dropLast().map { $0 + "-----END X509 CRL-----\n" }
        #expect(blocks.count == 2)
        let work = try S.temporaryDirectory("growth-crl")
        let first = try S.file(blocks[0], named: "first.pem", in: work)
        let issuing = try S.file(String(decoding: try grown!.pemEncoded(), as: UTF8.self), named: "issuing.pem", in: work)
        #expect(try S.tool(["openssl", "crl", "-in", first, "-noout", "-CAfile", issuing]).output.contains("verify OK"))
        let chain = try S.file(String(decoding: S.read(directory.file(CADirectory.intermediateCertificate))!, as: UTF8.self)
                               + String(decoding: S.read(directory.file(CAFiles.olderIntermediateName(oldLeaf.issuerSerial!)))!, as: UTF8.self),
                               named: "chain.pem", in: work)
        for pem in [oldLeaf.certificatePEM, newLeaf.signed.pem] {
            let leaf = try S.file(pem, named: "leaf-\(UUID().uuidString).pem", in: work)
            #expect(try !S.opensslVerifies(leaf: leaf, trusted: directory.file(CADirectory.rootCertificate), untrusted: chain,
                                           crl: directory.file(CADirectory.crl)), "a revoked leaf still verifies")
        }
        try S.withSession(directory, .read) { session throws in
            let statuses = Dictionary(uniqueKeysWithValues: try session.certificates().map { ($0.serial, $0) })
            #expect(statuses[oldLeaf.serial]?.revocation?.reason == .superseded)
            #expect(statuses[newLeaf.signed.serial]?.revocation?.reason == .keyCompromise)
        }
    }

    @Test("issuer(of:) names the CA certificate that signed a leaf")
    func issuerOfLeaf() throws {
        let directory = try Self.constrainedCA()
        try S.withSession(directory, .read) { session throws in
            let leaf = try session.validLeaves()[0]
            #expect(session.issuer(of: leaf)?.serial == session.issuing.serial)
            var foreign = leaf
            foreign.issuerSerial = try SerialNumber.random()
            #expect(session.issuer(of: foreign) == nil)
        }
    }

    @Test("the intermediate subject of a root: its CN plus ' Intermediate', cut to 64")
    func intermediateSubject() {
        #expect(IssuingIntermediate.subject(below: DistinguishedName([.init("O", "A"), .init("CN", "Root")]))
                == DistinguishedName([.init("O", "A"), .init("CN", "Root Intermediate")]))
        let long = IssuingIntermediate.subject(below: DistinguishedName([.init("CN", String(repeating: "r", count: 60))]))
        #expect(long.attributes[0].value.count == 64)
        let none = DistinguishedName([.init("O", "No CN")])
        #expect(IssuingIntermediate.subject(below: none) == none)
    }

    // MARK: - passphrase change on a session

    @Test("changing the operations passphrase: every issuing key and the leaf data key move, the root stays")
    func changeOperations() throws {
        let directory = try Self.constrainedCA(operations: S.operations, root: S.rootSecret)
        let rootKeyBefore = S.read(directory.file(CADirectory.rootKey))
        let newSecret = "a brand new operations passphrase"
        let change = try S.withSession(directory, operations: S.operations, root: S.rootSecret) { session in
            try session.changePassphrase(.operations) { S.passphrase(newSecret) }
        }
        #expect(change.leafKeyWrapChanged)
        #expect(!change.split)
        #expect(change.rewrapped.count == 1)
        #expect(S.read(directory.file(CADirectory.rootKey)) == rootKeyBefore)
        try S.withSession(directory, .read, operations: newSecret) { session throws in
            try session.unlockOperations()
            #expect(try session.validLeavesWithKeys().count == session.validLeaves().count)
        }
        try S.withSession(directory, .read, operations: S.operations) { session throws in
            #expect(S.refusal { try session.unlockOperations() }?.kind == .refused)
        }
    }

    @Test("a wrong old passphrase changes nothing and never asks for the new one")
    func changeWithWrongOld() throws {
        let directory = try Self.constrainedCA(operations: S.operations)
        let before = S.read(directory.file(CADatabase.fileName))
        let asked = Flag()
        let error = S.refusal {
            try S.withSession(directory, operations: "not the passphrase") { session in
                _ = try session.changePassphrase(.operations) { asked.set(); return S.passphrase("whatever new one") }
            }
        }
        #expect(error?.kind == .refused)
        #expect(!asked.isSet)
        #expect(S.read(directory.file(CADatabase.fileName)) == before)
    }

    @Test("a --no-passphrase CA has no passphrase to change")
    func changeOnClearCA() throws {
        let directory = try S.newCA()
        let error = S.refusal {
            try S.withSession(directory) { session in _ = try session.changePassphrase(.operations) { S.passphrase("new passphrase!") } }
        }
        #expect(error?.field == "--which")
    }
}
