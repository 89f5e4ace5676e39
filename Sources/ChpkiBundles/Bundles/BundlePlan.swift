import ChpkiCA
import ChpkiInventory
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
    /// Each leaf certificate's PEM -> its root's SHA-256: a leaf file's `root` in the manifest.
    private let leafRoots: [Data: String]

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
        var leafRoots: [Data: String] = [:]
        for leaf in facts.inputs.leaves.values { if let root = leaf.root { leafRoots[leaf.certificatePEM] = root } }
        self.leafRoots = leafRoots
        hosts = facts.inventory.hosts.filter { servicesOfHost[$0.name] != nil && (only == nil || only?.name == $0.name) }
    }

    public func services(of host: Host) -> [Service] { servicesOfHost[host.name] ?? [] }

    public func bundle(for host: Host) throws -> HostBundle {
        var files = trustFiles
        var directories: [BundleDirectory] = []
        var operations = [ServiceBundles.trust.name: ServiceBundles.trust.operations]
        let credentials = ServiceBundles.credentials
        for service in services(of: host) {
            let descriptor = ServiceBundles.layout(of: service.name)
            operations[service.name] = descriptor.operations(for: host, service, facts: facts)
            let shared = prepared[service.name] ?? ServiceFacts()
            files += try descriptor.files(for: host, service, shared: shared, facts: facts)
            directories += descriptor.directories(service, facts: facts)
            if minicluster && descriptor.name != credentials.name {
                files += try credentials.files(for: host, service, shared: ServiceFacts(), facts: facts)
                directories += credentials.directories(service, facts: facts)
            }
        }
        let names = services(of: host).map(\.name) + (minicluster ? [ServiceBundles.minicluster] : [])
        for index in files.indices where files[index].role == .leaf && files[index].root == nil {
            // Borrowed, not copied (HAProxy's leaf file holds its key too): only the certificate
            // at its start is copied out.
            files[index].root = leafRoots[files[index].withContents(Self.firstCertificate)]
        }
        return HostBundle(host: host.name, services: names, files: files, directories: directories,
                          caSHA256: facts.caSHA256, fallbackModified: facts.caCreated, operations: operations)
    }

    /// The leaf at the start of a chain file: its first PEM block (through the line ending that
    /// follows), or its first line when it holds no PEM (the test suite's placeholders).
    static func firstCertificate(_ contents: Data) -> Data {
        contents.withUnsafeBytes(firstCertificate)
    }

    static func firstCertificate(_ contents: UnsafeRawBufferPointer) -> Data {
        let end = Array("-----END CERTIFICATE-----".utf8)
        var cut = contents.startIndex
        if contents.count >= end.count, let start = (0...(contents.count - end.count)).first(where: { at in
            contents[at] == end[0] && end.indices.allSatisfy { contents[at + $0] == end[$0] }
        }) {
            cut = start + end.count
        }
        if let newline = contents[cut...].firstIndex(of: UInt8(ascii: "\n")) { cut = newline + 1 } else { cut = contents.endIndex }
        return Data(contents[contents.startIndex..<cut])
    }
}
