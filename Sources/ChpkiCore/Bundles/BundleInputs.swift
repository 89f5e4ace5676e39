import Foundation

/// What `chpki bundle` takes from the CA: the trusted roots, the intermediates, and every valid
/// leaf with its key. This is the ONE place bundle code reads the CA layer (CertificateAuthority,
/// CADatabase, CertificateRecord), so a change there (keys encrypted at rest, a locked session)
/// changes bundles here only.
public struct BundleInputs: Sendable {
    /// One valid leaf, ready to lay out.
    public struct Leaf: Sendable {
        public var certificatePEM: Data
        public var keyPEM: Data
        /// The leaf, then the intermediate that issued it when that was not the root.
        public var chainPEM: Data
        public var notBefore: Date
    }

    /// The root, and during a rotation the previous root too: every trust file holds them all.
    public var roots: [Data]
    /// Intermediates (the current one, and during a rotation the previous one), by serial.
    public var intermediates: [(serial: String, pem: Data)]
    public var leaves: [CertificateIdentity: Leaf]
    /// Lower-case hex SHA-256 of the root's DER.
    public var caSHA256: String
    /// The root's notBefore: the archive time of a host whose files carry no leaf.
    public var caCreated: Date

    /// Opens the CA, refuses when the inventory implies certificates not issued (or out of date),
    /// notes the ones due for renewal.
    public static func load(settings: Settings, inventory: Inventory, now: Date, reporter: Reporter) throws -> BundleInputs {
        let authority = try CertificateAuthority(directory: settings.caDirectory)
        let records = try authority.database.validLeaves()
        try checkIssued(inventory: inventory, leaves: records, now: now, reporter: reporter)
        let intermediates = try authority.intermediates().sorted { $0.key < $1.key }.map { (serial: $0.key, pem: $0.value) }
        let intermediateBySerial = Dictionary(intermediates.map { ($0.serial, $0.pem) }, uniquingKeysWith: { first, _ in first })
        var leaves: [CertificateIdentity: Leaf] = [:]
        for record in records {
            guard leaves[record.identity] == nil, let key = record.privateKeyPEM else { continue }
            let certificate = Data(record.certificatePEM.utf8)
            let chain = certificate + (record.issuerSerial.flatMap { intermediateBySerial[$0] } ?? Data())
            leaves[record.identity] = Leaf(certificatePEM: certificate, keyPEM: Data(key.utf8), chainPEM: chain, notBefore: record.notBefore)
        }
        return BundleInputs(roots: try authority.trustedRoots.map { try $0.pemEncoded() }, intermediates: intermediates, leaves: leaves,
                            caSHA256: authority.root.fingerprintSHA256.replacingOccurrences(of: ":", with: "").lowercased(),
                            caCreated: authority.root.notBefore)
    }

    /// Bundles ship what the inventory says: certificates missing or out of date are refused, due ones noted.
    static func checkIssued(inventory: Inventory, leaves: [CertificateRecord], now: Date, reporter: Reporter) throws {
        let plan = IssuancePlan(profiles: NamingRules.profiles(for: inventory), existing: leaves, now: now)  // issuer changes are fine during a rotation
        let pending = plan.items.filter { $0.action == .issued || $0.action == .reissued }
        if let first = pending.first {
            throw ChpkiError.input(file: inventory.path, field: first.profile.identity.host ?? first.profile.identity.name,
                "\(pending.count) certificate(s) missing or out of date (first: \(first.profile.identity.service ?? "") \(first.profile.identity.name), \(first.reason)); run 'chpki issue' first")
        }
        let due = plan.items.filter { $0.action == .renewed }
        if !due.isEmpty { reporter.note("\(due.count) certificate(s) are due for renewal: run 'chpki renew'") }
    }
}
