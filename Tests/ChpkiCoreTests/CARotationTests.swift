import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// CARotation through its states: no rotation -> started (a new root and intermediate current,
/// the old ones previous, a cross-certificate, a trust bundle of both) -> leaves reissued ->
/// finished (old ones retired). Each state is checked in the session, the files and with openssl;
/// each refused transition leaves the CA as it was.
@Suite("CA rotation")
struct CARotationTests {
    typealias S = CATestSupport

    static func issuedCA(intermediate: Bool = true, operations: String? = nil, root: String? = nil,
                         constraints: NameConstraints? = nil) throws -> CADirectory {
        let directory = try S.newCA(intermediate: intermediate, operations: operations, root: root, constraints: constraints)
        try S.issue(directory, try S.inventory(), operations: operations)
        return directory
    }

    @discardableResult
    static func start(_ directory: CADirectory, operations: String? = nil, root: String? = nil,
                      inventory: Inventory? = nil) throws -> CARotation.Started {
        try S.withSession(directory, operations: operations, root: root) { session in try CARotation.start(session, inventory: inventory) }
    }

    static func finish(_ directory: CADirectory, now: Date = Date()) throws -> Int {
        try S.withSession(directory, now: now) { session in try CARotation.finish(session, installed: nil) }
    }

    static func snapshot(_ directory: CADirectory) -> [String: Data] {
        var result: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: directory.path)
        while let name = enumerator?.nextObject() as? String {
            if let data = RegularFile.contents(directory.file(name), limit: 1 << 26) { result[name] = data }
        }
        return result
    }

    static func pem(_ certificate: Certificate) throws -> String { String(decoding: try certificate.pemEncoded(), as: UTF8.self) }

    // MARK: - names

    @Test("the next generation's CN", arguments: [
        ("Cinc Root CA", "Cinc Root CA G2"), ("Cinc Root CA G2", "Cinc Root CA G3"), ("Cinc Root CA G9", "Cinc Root CA G10"),
        ("Root G", "Root G G2"), ("RootG2", "RootG2 G2"), ("Root G2 Intermediate", "Root G2 Intermediate G2"),
    ])
    func nextGeneration(old: String, new: String) {
        let name = DistinguishedName([.init("O", "Acme"), .init("CN", old)])
        #expect(CARotation.nextGeneration(of: name) == DistinguishedName([.init("O", "Acme"), .init("CN", new)]))
    }

    @Test("a 64-character CN stays within 64 with its generation")
    func nextGenerationLength() {
        let long = String(repeating: "x", count: 64)
        let next = CARotation.nextGeneration(of: DistinguishedName([.init("CN", long)]))
        #expect(next.attributes[0].value.count == 64)
        #expect(next.attributes[0].value.hasSuffix(" G2"))
    }

    @Test("a name without a CN is kept; only the last CN changes")
    func nextGenerationNoCN() {
        let name = DistinguishedName([.init("O", "Acme")])
        #expect(CARotation.nextGeneration(of: name) == name)
        let two = DistinguishedName([.init("CN", "first"), .init("CN", "second")])
        #expect(CARotation.nextGeneration(of: two) == DistinguishedName([.init("CN", "first"), .init("CN", "second G2")]))
    }

    // MARK: - start

    @Test("start: a new root and intermediate are current, the old ones previous, in the session and ca.db")
    func startRoles() throws {
        let directory = try Self.issuedCA()
        let (oldRoot, oldIntermediate) = try S.withSession(directory, .read) { session in (session.root, session.issuingCertificate) }
        let started = try Self.start(directory)
        try S.withSession(directory, .read) { session throws in
            #expect(session.root.serial == started.root.serial)
            #expect(session.previousRoot?.serial == oldRoot.serial)
            #expect(session.issuingCertificate.serial == started.intermediate?.serial)
            #expect(session.trustedRoots.map(\.serial) == [started.root.serial, oldRoot.serial])
            let roles = Dictionary(uniqueKeysWithValues: session.authorities.map { ($0.serial, $0.authorityRole) })
            #expect(roles[oldRoot.serial] == .previous)
            #expect(roles[oldIntermediate.serial] == .previous)
            #expect(roles[started.root.serial] == .current)
            #expect(roles[started.intermediate!.serial] == .current)
            #expect(Set(session.intermediates.keys) == [oldIntermediate.serial.hex, started.intermediate!.serial.hex])
        }
    }

    @Test("start: the new root is self-signed G2 with the old lifetime; the intermediate G2 under it")
    func startCertificates() throws {
        let directory = try Self.issuedCA()
        let oldRoot = try S.withSession(directory, .read) { session in session.root }
        let started = try Self.start(directory)
        #expect(started.root.isSelfSigned)
        #expect(started.root.subject.attributes.last?.value == "Unit Test Root CA G2")
        #expect(started.root.keyType == oldRoot.keyType)
        let oldLifetime = oldRoot.notAfter.timeIntervalSince(oldRoot.notBefore)
        let newLifetime = started.root.notAfter.timeIntervalSince(started.root.notBefore)
        #expect(abs(newLifetime - oldLifetime - CAInitializer.backdating) < 5)
        let intermediate = try #require(started.intermediate)
        #expect(intermediate.isSigned(by: started.root))
        #expect(intermediate.pathLength == 0)
        #expect(intermediate.subject.attributes.last?.value == "Unit Test Root CA Intermediate G2")
    }

    @Test("the cross-certificate: the new root's subject and key, signed by the old root, within its life; openssl verifies it")
    func crossCertificate() throws {
        let directory = try Self.issuedCA()
        let oldRoot = try S.withSession(directory, .read) { session in session.root }
        let started = try Self.start(directory)
        let cross = started.crossSigned
        #expect(cross.subject == started.root.subject)
        #expect(try cross.publicKeyDER() == started.root.publicKeyDER())
        #expect(cross.issuer == oldRoot.subject)
        #expect(cross.isSigned(by: oldRoot))
        #expect(cross.notAfter <= oldRoot.notAfter)
        #expect(cross.serial != started.root.serial)
        #expect(S.read(directory.file(CADirectory.crossSigned)) == (try cross.pemEncoded()))
        let work = try S.temporaryDirectory("rotation")
        let old = try S.file(try Self.pem(oldRoot), named: "old.pem", in: work)
        #expect(try S.opensslVerifies(leaf: directory.file(CADirectory.crossSigned), trusted: old))
        // a client that trusts only the old root reaches the new intermediate through the cross-certificate
        #expect(try S.opensslVerifies(leaf: directory.file(CADirectory.intermediateCertificate), trusted: old,
                                      untrusted: directory.file(CADirectory.crossSigned)))
    }

    @Test("start writes previous-*, cross-signed.pem and a trust bundle of the new root then the old")
    func startFiles() throws {
        let directory = try Self.issuedCA()
        let oldRootPEM = S.read(directory.file(CADirectory.rootCertificate))!
        let oldIntermediatePEM = S.read(directory.file(CADirectory.intermediateCertificate))!
        let oldRootKey = S.read(directory.file(CADirectory.rootKey))!
        let started = try Self.start(directory)
        #expect(S.read(directory.file(CADirectory.previousRoot)) == oldRootPEM)
        #expect(S.read(directory.file(CADirectory.previousIntermediate)) == oldIntermediatePEM)
        #expect(S.read(directory.file(CADirectory.previousRootKey)) == oldRootKey)
        #expect(S.exists(directory.file(CADirectory.previousIntermediateKey)))
        #expect(S.read(directory.file(CADirectory.rootCertificate)) == (try started.root.pemEncoded()))
        let bundle = try Certificate.all(pem: S.read(directory.file(CADirectory.trustBundle))!)
        #expect(bundle.map(\.serial) == [started.root.serial, try Certificate(pem: oldRootPEM).serial])
        for name in CAFiles.managed where S.exists(directory.file(name)) {
            #expect(S.mode(directory.file(name)) == 0o600, "\(name)")
        }
    }

    @Test("during the rotation, old leaves verify against the trust bundle, and so do new ones")
    func overlapTrust() throws {
        let directory = try Self.issuedCA()
        let oldLeaves = try S.withSession(directory, .read) { session in try session.validLeaves() }
        try Self.start(directory)
        let newLeaves = try S.issue(directory, try S.inventory())
        #expect(newLeaves.count == oldLeaves.count, "every leaf is reissued under the new CA")
        let work = try S.temporaryDirectory("rotation-overlap")
        let chain = try S.file(String(decoding: S.read(directory.file(CADirectory.intermediateCertificate))! + S.read(directory.file(CADirectory.previousIntermediate))!, as: UTF8.self),
                               named: "chain.pem", in: work)
        for leaf in oldLeaves.prefix(2) {
            let path = try S.file(leaf.certificatePEM, named: "old-\(leaf.serial.hex).pem", in: work)
            #expect(try S.opensslVerifies(leaf: path, trusted: directory.file(CADirectory.trustBundle), untrusted: chain))
        }
        for leaf in newLeaves.prefix(2) {
            let path = try S.file(leaf.signed.pem, named: "new-\(leaf.signed.serial.hex).pem", in: work)
            #expect(try S.opensslVerifies(leaf: path, trusted: directory.file(CADirectory.trustBundle), untrusted: chain))
            #expect(try S.opensslVerifies(leaf: path, trusted: directory.file(CADirectory.rootCertificate),
                                          untrusted: directory.file(CADirectory.intermediateCertificate)))
            #expect(try !S.opensslVerifies(leaf: path, trusted: directory.file(CADirectory.previousRoot), untrusted: chain))
        }
    }

    @Test("after start, the plan reissues every leaf ('CA rotated'), keeping each key")
    func planAfterStart() throws {
        let directory = try Self.issuedCA()
        try Self.start(directory)
        try S.withSession(directory, .read) { session throws in
            let plan = try S.plan(session, try S.inventory())
            #expect(!plan.items.isEmpty)
            #expect(plan.items.allSatisfy { $0.action == .reissued && $0.reason == "CA rotated" && $0.keepsKey })
        }
    }

    @Test("start publishes a CRL of the new issuing CA beside the old one's")
    func startCRLs() throws {
        let directory = try Self.issuedCA()
        let started = try Self.start(directory)
        let crls = String(decoding: S.read(directory.file(CADirectory.crl))!, as: UTF8.self)
        #expect(crls.components(separatedBy: "-----BEGIN X509 CRL-----").count - 1 == 2)
        let work = try S.temporaryDirectory("rotation-crl")
        let first = try S.file(crls.components(separatedBy: "-----END X509 CRL-----")[0] + "-----END X509 CRL-----\n", named: "first.pem", in: work)
        let intermediate = try S.file(try Self.pem(started.intermediate!), named: "int.pem", in: work)
        let check = try S.tool(["openssl", "crl", "-in", first, "-noout", "-CAfile", intermediate])
        #expect(check.output.contains("verify OK"), "the first CRL is the new issuing CA's: \(check.output)")
    }

    @Test("a second start while a rotation is under way is refused, nothing changed")
    func startTwice() throws {
        let directory = try Self.issuedCA()
        try Self.start(directory)
        let before = Self.snapshot(directory)
        let error = S.refusal { try Self.start(directory) }
        #expect(error?.kind == .refused)
        #expect(error?.file == directory.file(CADirectory.previousRoot))
        #expect(Self.snapshot(directory) == before)
    }

    @Test("a root-only CA rotates to a root-only CA, the constraints staying on the root")
    func rootOnlyRotation() throws {
        let constraints = NameConstraints(permitted: [.dns("example.com"), .ipNetwork(address: [10, 0, 0, 0], mask: [255, 0, 0, 0])])
        let directory = try Self.issuedCA(intermediate: false, constraints: constraints)
        let started = try Self.start(directory)
        #expect(started.intermediate == nil)
        #expect(started.root.nameConstraints == constraints)
        #expect(!S.exists(directory.file(CADirectory.intermediateCertificate)))
        try S.withSession(directory, .read) { session throws in
            #expect(session.issuing.serial == started.root.serial)
        }
    }

    @Test("with an inventory, the new CA's constraints are the inventory's, on the intermediate")
    func constraintsFromInventory() throws {
        let old = NameConstraints(permitted: [.dns("example.com"), .ipNetwork(address: [10, 0, 0, 0], mask: [255, 255, 255, 0])])
        let directory = try Self.issuedCA(constraints: old)
        let inventory = try S.inventory()
        let started = try Self.start(directory, inventory: inventory)
        #expect(started.root.nameConstraints == nil)
        #expect(started.intermediate?.nameConstraints == NameConstraintsPolicy.constraints(for: inventory))
    }

    @Test("a CA without constraints gets none on rotation, even with an inventory")
    func noConstraintsStayNone() throws {
        let directory = try Self.issuedCA()
        let started = try Self.start(directory, inventory: try S.inventory())
        #expect(started.intermediate?.nameConstraints == nil)
        #expect(started.root.nameConstraints == nil)
    }

    @Test("the new keys are protected like the old: root under the root passphrase, intermediate under the operations one")
    func keyProtection() throws {
        let directory = try Self.issuedCA(operations: S.operations, root: S.rootSecret)
        try Self.start(directory, operations: S.operations, root: S.rootSecret)
        let rootKey = S.read(directory.file(CADirectory.rootKey))!
        let intermediateKey = S.read(directory.file(CADirectory.intermediateKey))!
        #expect((try? PrivateKey(pem: rootKey, passphrase: S.passphrase(S.rootSecret))) != nil)
        #expect((try? PrivateKey(pem: rootKey, passphrase: S.passphrase(S.operations))) == nil)
        #expect((try? PrivateKey(pem: intermediateKey, passphrase: S.passphrase(S.operations))) != nil)
    }

    @Test("without the root passphrase a split CA cannot start a rotation, and nothing changes")
    func needsRootPassphrase() throws {
        let directory = try Self.issuedCA(operations: S.operations, root: S.rootSecret)
        let before = Self.snapshot(directory)
        let error = S.refusal { try Self.start(directory, operations: S.operations, root: "not the root passphrase") }
        #expect(error?.kind == .refused)
        #expect(Self.snapshot(directory) == before)
    }

    @Test("a clock before the old root's notBefore refuses the rotation")
    func clockBeforeRoot() throws {
        let now = Date()
        let directory = try S.newCA(now: now)
        let before = Self.snapshot(directory)
        let error = S.refusal {
            try S.withSession(directory, now: now.addingTimeInterval(-7200 - 86_400)) { session in _ = try CARotation.start(session, inventory: nil) }
        }
        #expect(error?.kind == .refused)
        #expect(Self.snapshot(directory).filter { $0.key != OpenSSLIndex.fileName } == before.filter { $0.key != OpenSSLIndex.fileName })
    }

    // MARK: - finish

    @Test("finish without a rotation is refused naming --finish")
    func finishWithoutRotation() throws {
        let directory = try Self.issuedCA()
        let before = Self.snapshot(directory)
        let error = S.refusal { _ = try Self.finish(directory) }
        #expect(error?.field == "--finish")
        #expect(Self.snapshot(directory) == before)
    }

    @Test("finish while leaves still chain only to the old root is refused, nothing changed")
    func finishTooEarly() throws {
        let directory = try Self.issuedCA()
        try Self.start(directory)
        let before = Self.snapshot(directory)
        let error = S.refusal { _ = try Self.finish(directory) }
        #expect(error?.kind == .refused)
        #expect(error?.field == "--finish")
        #expect(Self.snapshot(directory) == before)
    }

    @Test("finish after every leaf is reissued retires the old root and intermediate")
    func finishRetires() throws {
        let directory = try Self.issuedCA()
        let oldRoot = try S.withSession(directory, .read) { session in session.root }
        let started = try Self.start(directory)
        try S.issue(directory, try S.inventory())
        let retired = try Self.finish(directory)
        #expect(retired == 2)
        try S.withSession(directory, .read) { session throws in
            #expect(session.previousRoot == nil)
            #expect(session.root.serial == started.root.serial)
            #expect(session.trustedRoots.count == 1)
            #expect(session.authorities.filter { $0.authorityRole == .retired }.count == 2)
            #expect(session.intermediates.keys.sorted() == [started.intermediate!.serial.hex])
        }
        for name in [CADirectory.previousRoot, CADirectory.previousRootKey, CADirectory.previousIntermediate,
                     CADirectory.previousIntermediateKey, CADirectory.crossSigned] {
            #expect(!S.exists(directory.file(name)), "\(name)")
        }
        let kept = S.names(in: directory.file(CADirectory.retired))
        let stem = String(oldRoot.serial.hex.prefix(12)) + "-"
        #expect(kept.contains(stem + CADirectory.previousRoot))
        #expect(kept.contains(stem + CADirectory.previousIntermediate))
        #expect(S.read(directory.file(CADirectory.retired + "/" + stem + CADirectory.previousRoot)) == (try oldRoot.pemEncoded()))
        // the trust bundle no longer holds the old root
        let bundle = (S.read(directory.file(CADirectory.trustBundle))).map { (try? Certificate.all(pem: $0)) ?? [] } ?? []
        #expect(!bundle.contains { $0.serial == oldRoot.serial })
    }

    @Test("after finish, crl.pem holds only the live CA's CRL")
    func finishCRLs() throws {
        let directory = try Self.issuedCA()
        let started = try Self.start(directory)
        try S.issue(directory, try S.inventory())
        _ = try Self.finish(directory)
        let crls = String(decoding: S.read(directory.file(CADirectory.crl))!, as: UTF8.self)
        #expect(crls.components(separatedBy: "-----BEGIN X509 CRL-----").count - 1 == 1)
        let work = try S.temporaryDirectory("rotation-finish")
        let intermediate = try S.file(try Self.pem(started.intermediate!), named: "int.pem", in: work)
        #expect(try S.tool(["openssl", "crl", "-in", directory.file(CADirectory.crl), "-noout", "-CAfile", intermediate]).output.contains("verify OK"))
    }

    @Test("revoked old leaves do not hold the finish back")
    func revokedOldLeavesDoNotBlock() throws {
        let directory = try Self.issuedCA()
        try Self.start(directory)
        try S.withSession(directory) { session throws in
            _ = try session.revokeAndPublishCRL(try session.validLeaves().map(\.serial))
        }
        #expect(try Self.finish(directory) == 2)
    }

    @Test("expired old leaves do not hold the finish back")
    func expiredOldLeavesDoNotBlock() throws {
        let now = Date()
        let directory = try S.newCA(validity: Period(amount: 2, unit: .years), now: now)
        let shortLived = try S.inventory(S.inventoryYAML.replacingOccurrences(of: "domain: example.com",
                                                                              with: "domain: example.com\ndefaults: {validity: 10d, renew_before: 2d}"))
        try S.issue(directory, shortLived, now: now)
        try Self.start(directory)
        // 20 days on, the old leaves have expired: nothing depends on the old root any more
        #expect(try Self.finish(directory, now: now.addingTimeInterval(20 * 86_400)) == 2)
    }

    @Test("a second rotation after a finish goes to G3, and finish works again")
    func secondRotation() throws {
        let directory = try Self.issuedCA()
        try Self.start(directory)
        try S.issue(directory, try S.inventory())
        _ = try Self.finish(directory)
        let third = try Self.start(directory)
        #expect(third.root.subject.attributes.last?.value == "Unit Test Root CA G3")
        #expect(third.intermediate?.subject.attributes.last?.value == "Unit Test Root CA Intermediate G3")
        try S.issue(directory, try S.inventory())
        #expect(try Self.finish(directory) == 2)
        try S.withSession(directory, .read) { session throws in
            #expect(session.authorities.filter { $0.authorityRole == .retired }.count == 4)
        }
        #expect(S.names(in: directory.file(CADirectory.retired)).count >= 4)
    }
}
