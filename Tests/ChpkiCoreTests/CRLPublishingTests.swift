import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// The clock rules of signing (SigningClock) and the CRL a CA publishes (CRLPublisher): no
/// signing before the issuer's notBefore, no CRL that would already be expired against what ca.db
/// recorded; a CRL lists each revoked serial with its RFC 5280 reason code, has the number and
/// lifetime asked, and openssl verifies it against its issuer.
@Suite("CRL publishing and the signing clock")
struct CRLPublishingTests {
    typealias S = CATestSupport

    static func issuer(now: Date = Date()) throws -> Signer {
        let key = try PrivateKey.generate(.ecP256)
        let certificate = try CertificateTemplate(subject: DistinguishedName([.init("CN", "CRL Issuer")]), serial: try .random(),
                                                  notBefore: now.addingTimeInterval(-60), notAfter: now.addingTimeInterval(365 * 86_400),
                                                  certificateAuthority: .init(pathLength: 0), keyUsage: [.keyCertSign, .cRLSign])
            .sign(publicKeyOf: key, by: Signer(certificate: nil, key: key))
        return Signer(certificate: certificate, key: key)
    }

    static func revoked(_ reason: RevocationReason?, at date: Date) throws -> IssuedCertificate {
        var record = IssuancePlanTests.record(for: IssuancePlanTests.profile(), status: .revoked)
        record.serial = try SerialNumber.random()
        record.revocation = Revocation(date: date, reason: reason)
        return record
    }

    static func text(_ pem: Data, issuer: Signer) throws -> (verified: Bool, text: String) {
        let work = try S.temporaryDirectory("crl")
        let crl = try S.file(String(decoding: pem, as: UTF8.self), named: "crl.pem", in: work)
        let ca = try S.file(String(decoding: try issuer.certificate!.pemEncoded(), as: UTF8.self), named: "ca.pem", in: work)
        let result = try S.tool(["openssl", "crl", "-in", crl, "-noout", "-text", "-CAfile", ca])
        return (result.output.contains("verify OK"), result.output)
    }

    @Test("signing at or after the issuer's notBefore is allowed, a second before it is refused")
    func signingClock() throws {
        let signer = try Self.issuer()
        let notBefore = signer.certificate!.notBefore
        try SigningClock.check(issuer: signer.certificate!, now: notBefore)
        try SigningClock.check(issuer: signer.certificate!, now: notBefore.addingTimeInterval(3600))
        let error = S.refusal { try SigningClock.check(issuer: signer.certificate!, now: notBefore.addingTimeInterval(-1)) }
        #expect(error?.kind == .refused)
    }

    @Test("a CRL whose nextUpdate is not after the latest recorded change is refused")
    func nextUpdateRule() throws {
        let signer = try Self.issuer()
        let now = Date()
        let latest = now.addingTimeInterval(40 * 86_400)  // ca.db saw a change 40 days "ahead": the clock went back
        let input = CADatabase.CRLInput(number: 7, revoked: [], latestRecorded: latest)
        #expect(S.refusal { _ = try CRLPublisher.sign(input, signer: signer, now: now, lifetime: CRLPublisher.defaultLifetime) }?.kind == .refused)
        // a lifetime that reaches past it is fine
        _ = try CRLPublisher.sign(input, signer: signer, now: now, lifetime: Period(amount: 41, unit: .days))
        // exactly at it is still refused (it would expire the instant it is published)
        let exact = CADatabase.CRLInput(number: 7, revoked: [], latestRecorded: now.addingTimeInterval(30 * 86_400))
        #expect(S.refusal { _ = try CRLPublisher.sign(exact, signer: signer, now: now, lifetime: CRLPublisher.defaultLifetime) } != nil)
    }

    @Test("the CRL lists each revoked serial with its reason code; openssl verifies its signature")
    func entries() throws {
        let signer = try Self.issuer()
        let now = Date()
        let records = try [RevocationReason.keyCompromise, .superseded, .cessationOfOperation].map { try Self.revoked($0, at: now.addingTimeInterval(-60)) }
        let pem = try CRLPublisher.sign(.init(number: 12, revoked: records, latestRecorded: nil), signer: signer, now: now,
                                        lifetime: CRLPublisher.defaultLifetime)
        let (verified, text) = try Self.text(pem, issuer: signer)
        #expect(verified, "\(text)")
        for record in records { #expect(text.uppercased().contains(record.serial.hex.uppercased()), "\(record.serial.hex)") }
        #expect(text.contains("Key Compromise"))
        #expect(text.contains("Superseded"))
        #expect(text.contains("Cessation Of Operation"))
        #expect(text.contains("X509v3 CRL Number") && text.contains("12"))
    }

    @Test("a record without a revocation is left out; one without a reason has no reason code")
    func partialRecords() throws {
        let signer = try Self.issuer()
        var notRevoked = IssuancePlanTests.record(for: IssuancePlanTests.profile())
        notRevoked.serial = try SerialNumber.random()
        let noReason = try Self.revoked(nil, at: Date().addingTimeInterval(-60))
        let pem = try CRLPublisher.sign(.init(number: 2, revoked: [notRevoked, noReason], latestRecorded: nil), signer: signer, now: Date(),
                                        lifetime: CRLPublisher.defaultLifetime)
        let (_, text) = try Self.text(pem, issuer: signer)
        #expect(!text.uppercased().contains(notRevoked.serial.hex.uppercased()))
        #expect(text.uppercased().contains(noReason.serial.hex.uppercased()))
        #expect(!text.contains("CRL Reason Code"))
    }

    @Test("the lifetime sets nextUpdate; thisUpdate is now", arguments: [Period(amount: 1, unit: .days), Period(amount: 30, unit: .days),
                                                                      Period(amount: 90, unit: .minutes)])
    func lifetime(period: Period) throws {
        let signer = try Self.issuer()
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let pem = try CRLPublisher.sign(.init(number: 3, revoked: [], latestRecorded: nil), signer: signer, now: now, lifetime: period)
        let crl = try CertificateRevocationList(pem: pem)
        #expect(abs(crl.thisUpdate.timeIntervalSince(now)) < 1)
        let nextUpdate = try #require(crl.nextUpdate)
        #expect(abs(nextUpdate.timeIntervalSince(period.after(now))) < 1)
    }

    @Test("a CA's CRL number rises by one with each publication, and revocations accumulate")
    func numbersOnACA() throws {
        let directory = try S.newCA()
        try S.issue(directory, try S.inventory())
        let (first, second, serials) = try S.withSession(directory) { session throws -> (Int, Int, [SerialNumber]) in
            let leaves = try session.validLeaves()
            let first = try session.revokeAndPublishCRL([leaves[0].serial]).number
            let second = try session.revokeAndPublishCRL([leaves[1].serial], reason: .affiliationChanged).number
            return (first, second, [leaves[0].serial, leaves[1].serial])
        }
        #expect(second == first + 1)
        let text = try S.tool(["openssl", "crl", "-in", directory.file(CADirectory.crl), "-noout", "-text"]).output.uppercased()
        for serial in serials { #expect(text.contains(serial.hex.uppercased())) }
        #expect(text.contains("AFFILIATION CHANGED"))
    }

    @Test("at the session, an unknown serial revokes nothing, and revoking again keeps the first revocation")
    func repeatedRevocations() throws {
        let directory = try S.newCA()
        try S.issue(directory, try S.inventory())
        let (leaf, validBefore) = try S.withSession(directory) { session throws -> (IssuedCertificate, Int) in
            let valid = try session.validLeaves()
            _ = try session.revokeAndPublishCRL([try SerialNumber.random()])
            #expect(try session.validLeaves().count == valid.count, "an unknown serial revoked something")
            _ = try session.revokeAndPublishCRL([valid[0].serial], reason: .keyCompromise)
            return (valid[0], valid.count)
        }
        let first = try S.withSession(directory, .read) { session in try session.certificates().first { $0.serial == leaf.serial }! }
        try S.withSession(directory) { session throws in
            _ = try session.revokeAndPublishCRL([leaf.serial], reason: .superseded)
            #expect(try session.validLeaves().count == validBefore - 1)
        }
        let again = try S.withSession(directory, .read) { session in try session.certificates().first { $0.serial == leaf.serial }! }
        #expect(again.status == .revoked)
        #expect(again.revocation == first.revocation)
        let text = try S.tool(["openssl", "crl", "-in", directory.file(CADirectory.crl), "-noout", "-text"]).output
        #expect(text.components(separatedBy: leaf.serial.hex.uppercased()).count == 2, "the serial is listed once")
    }
}
