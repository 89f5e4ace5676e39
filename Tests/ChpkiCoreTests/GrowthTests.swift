import Foundation
import Testing
@testable import ChpkiCore
@testable import ChpkiCA
@testable import ChpkiInventory

/// The rules growth and retirement rest on, without a CA: how wide `--name-constraints auto` is,
/// and which live certificates `issue` retires.
@Suite("Growth and retirement rules")
struct GrowthTests {
    static let yaml = """
        domain: example.com
        subject: {O: MyCompany, C: US}
        hosts:
          - {name: node-1.example.com, ips: [10.0.0.1, "2001:db8::1"], groups: [backend]}
          - {name: node-2.example.com, ips: [10.0.0.2], groups: [backend]}
        services:
          etcd: {hosts: backend, server_cert_mode: both}
        """

    func inventory(_ text: String = yaml) throws -> Inventory {
        try InventoryReader(path: "cluster.yml").read(yaml: text)
    }

    @Test func constraintsCoverTheInventoryAndNothingElse() throws {
        let check = NameConstraintsCheck(NameConstraintsPolicy.constraints(for: try inventory()))
        for name: GeneralName in [.dns("node-1"), .dns("etcd.example.com"), .dns("anything.example.com"), .dns("localhost"),
                                  .ip([10, 0, 0, 77]), .ip([127, 0, 0, 1]), .ip(IPAddress("2001:db8::ff")!.bytes), .ip(IPAddress("::1")!.bytes)] {
            #expect(check.isPermitted(name), "\(name)")
        }
        for name: GeneralName in [.dns("www.example.org"), .dns("node-3"), .dns("example.org"), .ip([8, 8, 8, 8]),
                                  .ip([10, 0, 1, 1]), .ip(IPAddress("2001:db8:1::1")!.bytes)] {
            #expect(!check.isPermitted(name), "\(name)")
        }
    }

    @Test func extraNamesAreAddedExactlyAndIPsAsTheirNetwork() throws {
        let constraints = NameConstraintsPolicy.constraints(for: try inventory(), including: [.dns("tools"), .dns("tools.example.com"), .ip([192, 168, 5, 9])])
        let check = NameConstraintsCheck(constraints)
        #expect(check.isPermitted(.dns("tools")) && check.isPermitted(.ip([192, 168, 5, 200])))
        #expect(!check.isPermitted(.dns("tool")) && !check.isPermitted(.ip([192, 168, 6, 1])))
        // a name under the domain adds no subtree
        #expect(!constraints.permitted.contains(.dns("tools.example.com")))
    }

    @Test func violationsListEverySANOutside() throws {
        let old = NameConstraintsPolicy.constraints(for: try inventory())
        let grown = try inventory(Self.yaml.replacingOccurrences(of: "services:", with: """
              - {name: node-3.example.com, ips: [10.9.0.3], groups: [backend]}
            services:
            """))
        let violations = NameConstraintsCheck.violations(NamingRules.profiles(for: grown), against: [old])
        #expect(Set(violations.map(\.name)) == [.dns("node-3"), .ip([10, 9, 0, 3])])
        #expect(IssuingAuthorities.summary(violations.map(\.name)) == "node-3, 10.9.0.0/24")
    }

    func leaf(_ profile: CertificateProfile, status: CertificateStatus = .valid, serial: UInt8, issuer: SerialNumber,
              sans: [GeneralName]? = nil) -> IssuedCertificate {
        IssuedCertificate(
            serial: SerialNumber(hex: String(format: "%02X", serial) + String(repeating: "AB", count: 15))!, kind: profile.identity.kind,
            host: profile.identity.host, service: profile.identity.service, name: profile.identity.name,
            subject: profile.subject.rfc4514, subjectOneLine: "", subjectAlternativeNames: sans ?? profile.subjectAlternativeNames,
            profile: profile.essentials, keyType: profile.keyType, issuerSerial: issuer, notBefore: Date(), notAfter: Date().addingTimeInterval(86400),
            status: status, revocation: nil, supersededBy: nil, authorityRole: nil, certificatePEM: "")
    }

    @Test func retiresWhatLeftOrChangedNamesButNotRenewalsOrOneOffs() throws {
        let issuer = SerialNumber(hex: String(repeating: "CD", count: 16))!
        let before = NamingRules.profiles(for: try inventory())
        let after = NamingRules.profiles(for: try inventory(Self.yaml
            .replacingOccurrences(of: "  - {name: node-2.example.com, ips: [10.0.0.2], groups: [backend]}\n", with: "")
            .replacingOccurrences(of: "10.0.0.1, ", with: "10.0.0.11, ")))
        let node1Server = before.first { $0.identity.host == "node-1.example.com" && $0.identity.kind == .server }!
        let node2 = before.filter { $0.identity.host == "node-2.example.com" }
        let node1Client = before.first { $0.identity.host == "node-1.example.com" && $0.identity.kind == .client }!
        var live = [leaf(node1Server, serial: 1, issuer: issuer), leaf(node1Client, serial: 2, issuer: issuer)]
        live += node2.enumerated().map { leaf($1, serial: UInt8(10 + $0), issuer: issuer) }
        // a superseded renewal of the client (same names): left to expire
        live.append(leaf(node1Client, status: .superseded, serial: 20, issuer: issuer))
        // a one-off outside the inventory, and a leaf of a retired CA
        let oneOff = leaf(node2[0], serial: 30, issuer: issuer)
        var oneOffIdentityChanged = oneOff
        oneOffIdentityChanged.host = "tools.example.com"
        live.append(oneOffIdentityChanged)
        live.append(leaf(node2[0], serial: 40, issuer: SerialNumber(hex: String(repeating: "EE", count: 16))!))
        let plan = IssuancePlan(profiles: after, existing: live.filter { $0.status == .valid }, now: Date())
        let retirement = RetirementPlan(profiles: after, plan: plan, live: live, oneOffs: [oneOffIdentityChanged.serial], liveIssuers: [issuer])
        let reasons = Dictionary(uniqueKeysWithValues: retirement.items.map { ($0.certificate.serial, $0.reason) })
        #expect(reasons[live[0].serial] == .superseded)  // node-1's server names its old IP
        for gone in live[2..<(2 + node2.count)] { #expect(reasons[gone.serial] == .cessationOfOperation) }
        #expect(reasons.count == 1 + node2.count, "\(retirement.items.map(\.why))")
    }
}
