import Foundation

/// One `chpki bundle` run: the selected services prepared once (their cluster facts), then each
/// host's bundle assembled from the descriptors by lookups only.
public struct BundlePlan: @unchecked Sendable {  // read-only after init
    public let facts: ClusterFacts
    public let minicluster: Bool
    /// The hosts to lay out, in inventory order.
    public let hosts: [Host]
    private let servicesOfHost: [String: [Service]]
    private let prepared: [String: ServiceFacts]
    private let trustFiles: [BundleFile]

    /// `services` in inventory order; `only`, when given, restricts the run to that host.
    public init(facts: ClusterFacts, services: [Service], minicluster: Bool, only: Host? = nil) throws {
        self.facts = facts
        self.minicluster = minicluster
        var servicesOfHost: [String: [Service]] = [:]
        var prepared: [String: ServiceFacts] = [:]
        for service in services {
            prepared[service.name] = try ServiceBundles.layout(of: service.name).prepare(service, facts: facts)
            for host in facts.hosts(of: service) where servicesOfHost[host.name]?.contains(where: { $0.name == service.name }) != true {
                servicesOfHost[host.name, default: []].append(service)
            }
        }
        self.servicesOfHost = servicesOfHost
        self.prepared = prepared
        trustFiles = ServiceBundles.trust.files(facts: facts)
        hosts = facts.inventory.hosts.filter { servicesOfHost[$0.name] != nil && (only == nil || only?.name == $0.name) }
    }

    public func services(of host: Host) -> [Service] { servicesOfHost[host.name] ?? [] }

    public func bundle(for host: Host) throws -> HostBundle {
        var files = trustFiles
        var directories: [BundleDirectory] = []
        let credentials = ServiceBundles.credentials
        for service in services(of: host) {
            let descriptor = ServiceBundles.layout(of: service.name)
            let shared = prepared[service.name] ?? ServiceFacts()
            files += try descriptor.files(for: host, service, shared: shared, facts: facts)
            directories += descriptor.directories(service, facts: facts)
            if minicluster && descriptor.name != credentials.name {
                files += try credentials.files(for: host, service, shared: ServiceFacts(), facts: facts)
                directories += credentials.directories(service, facts: facts)
            }
        }
        let names = services(of: host).map(\.name) + (minicluster ? [ServiceBundles.minicluster] : [])
        return HostBundle(host: host.name, services: names, files: files, directories: directories,
                          caSHA256: facts.caSHA256, fallbackModified: facts.caCreated)
    }
}
