import ChpkiBase
import ChpkiCA
import ChpkiInventory
import ChpkiOpenSSL
import ChpkiReporting
import Foundation

/// What `chpki bundle` takes from the CA: the trusted roots, the intermediates, and every valid
/// leaf with its key. This is the ONE place bundle code reads the CA layer (CASession,
/// IssuedCertificate), so a change there changes bundles here only.
public struct BundleInputs: Sendable {
    /// One valid leaf, ready to lay out.
    public struct Leaf: Sendable {
        public var certificatePEM: Data
        /// The key's PEM as the CA's vault opened it, in wiped memory; every bundle file that
        /// holds it shares this buffer until the file is written.
        public var keyPEM: SecretBytes
        /// The leaf, then the intermediate that issued it when that was not the root.
        public var chainPEM: Data
        public var notBefore: Date
        /// Lower-case hex SHA-256 of the DER of the root the chain ends at (MANIFEST.json `root`):
        /// how `rotate-ca --finish` tells from a host's record which root its leaves come from.
        public var root: String? = nil

        public init(certificatePEM: Data, keyPEM: SecretBytes, chainPEM: Data, notBefore: Date, root: String? = nil) {
            self.certificatePEM = certificatePEM
            self.keyPEM = keyPEM
            self.chainPEM = chainPEM
            self.notBefore = notBefore
            self.root = root
        }

        /// The chain, then the key, in one wiped buffer (HAProxy's `crt` file).
        public var chainAndKeyPEM: SecretBytes {
            chainPEM.withUnsafeBytes { chain in keyPEM.withBytes { key in SecretBytes(concatenating: [chain, key]) } }
        }
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

    /// Reads the CA through `session` (a read session the command opened: locked, recovered, then
    /// loaded; its passphrase opens the sealed leaf keys), refuses when the inventory implies
    /// certificates not issued (or out of date), notes the ones due for renewal.
    public static func load(from session: CASession, inventory: Inventory, reporter: Reporter) throws -> BundleInputs {
        // One read of the valid leaves serves the check and the layout (it is most of a run's fixed cost).
        let valid = try session.validLeaves()
        try checkIssued(inventory: inventory, leaves: valid, now: session.now, reporter: reporter)
        let intermediates = session.intermediates.sorted { $0.key < $1.key }.map { (serial: $0.key, pem: $0.value) }
        let intermediateBySerial = Dictionary(intermediates.map { ($0.serial, $0.pem) }, uniquingKeysWith: { first, _ in first })
        // Each CA's root: a root is its own, an intermediate's is its issuer's.
        let digest = { (root: Certificate) in root.fingerprintSHA256.replacingOccurrences(of: ":", with: "").lowercased() }
        var rootOf = Dictionary(session.trustedRoots.map { ($0.serial.hex, digest($0)) }, uniquingKeysWith: { first, _ in first })
        for authority in session.authorities where authority.kind == .intermediate {
            if let issuer = authority.issuerSerial, let root = rootOf[issuer.hex] { rootOf[authority.serial.hex] = root }
        }
        var leaves: [CertificateIdentity: Leaf] = [:]
        let keys = try session.leafKeys(valid.map(\.serial))
        for record in valid {
            guard let key = keys[record.serial], leaves[record.identity] == nil else { continue }
            let certificate = Data(record.certificatePEM.utf8)
            let chain = certificate + (record.issuerSerial.flatMap { intermediateBySerial[$0.hex] } ?? Data())
            leaves[record.identity] = Leaf(certificatePEM: certificate, keyPEM: key, chainPEM: chain,
                                           notBefore: record.notBefore, root: record.issuerSerial.flatMap { rootOf[$0.hex] })
        }
        return BundleInputs(roots: try session.trustedRoots.map { try $0.pemEncoded() }, intermediates: intermediates, leaves: leaves,
                            caSHA256: session.root.fingerprintSHA256.replacingOccurrences(of: ":", with: "").lowercased(),
                            caCreated: session.root.notBefore)
    }

    /// Bundles ship what the inventory says: certificates missing or out of date are refused, due ones noted.
    static func checkIssued(inventory: Inventory, leaves: [IssuedCertificate], now: Date, reporter: Reporter) throws {
        let plan = IssuancePlan(profiles: NamingRules.profiles(for: inventory), existing: leaves, now: now)  // issuer changes are fine during a rotation
        let pending = plan.items.filter { $0.action == .issued || $0.action == .reissued }
        if let first = pending.first {
            throw ChpkiError.input(.bundleNotIssued, file: inventory.path, field: first.profile.identity.host ?? first.profile.identity.name,
                "\(pending.count) certificate(s) missing or out of date (first: \(first.profile.identity.service ?? "") \(first.profile.identity.name), \(first.reason)); run 'chpki issue' first")
        }
        let due = plan.items.filter { $0.action == .renewed }
        if !due.isEmpty { reporter.note("\(due.count) certificate(s) are due for renewal: run 'chpki renew'") }
    }
}
