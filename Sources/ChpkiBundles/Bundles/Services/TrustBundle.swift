import ChpkiOpenSSL
import Foundation

/// The root (and, during a rotation, both roots) in the system trust stores of every host: RHEL's
/// anchors directory and Debian's local CA directory. Activating them (`update-ca-trust extract`,
/// `update-ca-certificates`) is the installer's job; `verify --installed` on `/` checks it was done.
public struct TrustBundle: Sendable {
    public let name = BundleManifest.trustService
    static let redHatAnchors = "etc/pki/ca-trust/source/anchors"
    package static let debianAnchors = "usr/local/share/ca-certificates"
    /// Where the activated system bundle is, Debian's then RHEL's.
    static let systemBundles = ["etc/ssl/certs/ca-certificates.crt", "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"]

    /// `cinc-root-ca` for "Cinc Root CA": the file name of a root in the system trust stores.
    static func anchorName(_ rootPEM: Data) -> String {
        let commonName = (try? Certificate(pem: rootPEM).subject.commonName) ?? nil
        let slug = (commonName ?? "chpki-root-ca").lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" }
        return String(slug).split(separator: "-").joined(separator: "-")
    }

    /// The same anchors on every host: made once per run.
    public func files(facts: ClusterFacts) -> [BundleFile] {
        facts.inputs.roots.flatMap { root -> [BundleFile] in
            let anchor = Self.anchorName(root)
            return [BundleFile("\(Self.redHatAnchors)/\(anchor).pem", root, mode: 0o644, owner: "root", service: name, role: .trust),
                    BundleFile("\(Self.debianAnchors)/\(anchor).crt", root, mode: 0o644, owner: "root", service: name, role: .trust)]
        }
    }

    /// The Debian anchor of the current root, as an absolute path on the host: the trust a health
    /// check of a service without a trust file of its own (HAProxy, nginx) verifies against. Its
    /// leaves change only to the current root's, so that one anchor is the one that matters.
    static func currentAnchor(_ facts: ClusterFacts) -> String {
        "/\(debianAnchors)/\(anchorName(facts.inputs.roots.first ?? facts.rootPEM)).crt"
    }

    /// Activating anchors is `update-ca-certificates` (Debian, the reference cluster); a RHEL site
    /// sets `trust: {on_trust: [[update-ca-trust, extract]]}` in its operations file. No health
    /// check: nothing serves them.
    public var operations: ServiceOperations { ServiceOperations(onTrust: [["update-ca-certificates"]]) }

    /// The roots every other check chains to: the RHEL anchors of the tree.
    static func roots(_ files: TreeFiles) -> [Certificate] {
        files.list(redHatAnchors).filter { $0.hasSuffix(".pem") }.flatMap { files.certificates("\(redHatAnchors)/\($0)") }
    }

    public func check(_ checks: inout BundleChecks) {
        if checks.roots.isEmpty { checks.report(Self.redHatAnchors, "no root CA trust anchor") }
        for directory in [Self.redHatAnchors, Self.debianAnchors] {
            for file in checks.files.list(directory) where checks.manifestFiles.contains("\(directory)/\(file)") {
                checks.rootsOnly("\(directory)/\(file)")
            }
        }
        guard checks.atSystemRoot else { return }
        // Installed on this very host: the roots must be in the activated system bundle too.
        guard let system = Self.systemBundles.first(where: { checks.files.exists($0) }) else {
            checks.report(Self.systemBundles[0], "no system CA bundle (nor /\(Self.systemBundles[1])): the trust anchors are not active")
            return
        }
        let active = Set(checks.files.certificates(system).compactMap { try? $0.derEncoded() })
        for root in checks.roots where !((try? root.derEncoded()).map(active.contains) ?? false) {
            checks.report(system, "does not hold the root '\(root.subject.commonName ?? root.subjectRFC2253)': run update-ca-certificates (Debian) or update-ca-trust extract (RHEL)")
        }
    }
}
