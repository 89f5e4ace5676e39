import ChpkiCA
import ChpkiInventory
import Foundation

/// minicluster's layout (reference 002): `etc/credentials/x509/<service>/{server,client}/
/// {cert.pem,private_key.pem}` and `etc/credentials/x509/ca.pem`, all root-owned. Services without
/// a layout of their own get it; `chpki bundle minicluster` adds it for every service.
public struct CredentialsBundle: ServiceBundle {
    public static let layoutName = "minicluster"
    public let name = CredentialsBundle.layoutName
    static let base = "etc/credentials/x509"
    static let authority = "\(base)/ca.pem"

    static func directory(_ service: String) -> String { "\(base)/\(service)" }

    public func directories(_ service: Service, facts: ClusterFacts) -> [BundleDirectory] {
        var directories = ["etc/credentials", Self.base].map { BundleDirectory($0, mode: 0o755, owner: "root", service: name) }
        let own = Self.directory(service.name)
        directories.append(BundleDirectory(own, mode: 0o755, owner: "root", service: service.name))
        if hasServer(service) { directories.append(BundleDirectory("\(own)/server", mode: 0o700, owner: "root", service: service.name)) }
        if service.enableClient { directories.append(BundleDirectory("\(own)/client", mode: 0o700, owner: "root", service: service.name)) }
        return directories
    }

    func hasServer(_ service: Service) -> Bool { service.enableServer && service.name != NamingRules.haproxyService }

    public func files(for host: Host, _ service: Service, shared: ServiceFacts, facts: ClusterFacts) throws -> [BundleFile] {
        let base = Self.directory(service.name)
        var files = [BundleFile(Self.authority, facts.rootPEM, mode: 0o644, owner: "root", service: BundleManifest.trustService, role: .trust)]
        if hasServer(service) {
            let server = try facts.server(service, host)
            files.append(BundleFile("\(base)/server/cert.pem", server.chainPEM, mode: 0o644, owner: "root", service: service.name, issued: server.notBefore,
                                    role: .leaf))
            files.append(BundleFile("\(base)/server/private_key.pem", server.keyPEM, mode: 0o600, owner: "root", service: service.name, role: .key))
        }
        if service.enableClient {
            let client = try facts.client(service, host)
            files.append(BundleFile("\(base)/client/cert.pem", client.chainPEM, mode: 0o644, owner: "root", service: service.name, issued: client.notBefore,
                                    role: .leaf))
            files.append(BundleFile("\(base)/client/private_key.pem", client.keyPEM, mode: 0o600, owner: "root", service: service.name, role: .key))
        }
        return files
    }

    /// A service laid out here has no descriptor: a unit named after it, reloaded (or restarted)
    /// on a leaf, restarted on trust; `minicluster` itself is a layout, nothing runs.
    public func operations(for host: Host, _ service: Service, facts: ClusterFacts) -> ServiceOperations {
        service.name == name ? .none : .generic(service.name)
    }

    /// `service` is the inventory service whose credentials these are (or `minicluster` for all).
    public func check(_ checks: inout BundleChecks, service: String) {
        checks.rootsOnly(Self.authority)
        let services = service == name ? checks.files.list(Self.base).filter { !$0.hasSuffix(".pem") } : [service]
        for service in services {
            let base = Self.directory(service)
            if checks.files.exists("\(base)/server/cert.pem") {
                checks.leaf("\(base)/server/cert.pem", key: checks.files.key("\(base)/server/private_key.pem"), names: [checks.host])
            }
            if checks.files.exists("\(base)/client/cert.pem") {
                checks.leaf("\(base)/client/cert.pem", key: checks.files.key("\(base)/client/private_key.pem"), names: [])
            }
        }
    }
}
