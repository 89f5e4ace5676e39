import ChpkiBase
import ChpkiModel
import ChpkiPlatform
import Foundation

/// What each host last installed, as chpki learns it from the install records (`<state>/<fqdn>.json`,
/// the manifest each host last installed; default `<ca-dir>/installed`): the services whose files
/// a host's record holds. Cluster membership follows this, not the inventory alone (SPEC §7
/// Growth): a host of etcd or MinIO whose record holds that service's files is running in the
/// cluster; one without is joining. No record anywhere: nothing was installed from here yet.
public struct InstalledServices: @unchecked Sendable {  // read-only after load
    /// The state directory read (nil: none was).
    public let directory: String?
    /// The bundle directory the last `chpki bundle` wrote (its `--out`): where the bytes of a file
    /// a host already has can be found again (the record holds only their sha256).
    public let previousOutput: String?
    private let records: [String: BundleManifest]

    public static let none = InstalledServices(directory: nil, previousOutput: nil, records: [:])

    init(directory: String?, previousOutput: String?, records: [String: BundleManifest]) {
        self.directory = directory
        self.previousOutput = previousOutput
        self.records = records
    }

    /// A record is a few kB; a state directory of more than this many is not chpki's.
    static let recordLimit = 100_000

    /// Every `<fqdn>.json` in `directory` (a missing directory: no host installed yet). Each record is
    /// read and checked as `rollout-plan` reads it (InstallRecord): one that fails is refused, exit 2,
    /// naming the file and field; other names (temporary files, notes) are not records and are skipped.
    public static func load(directory: String, previousOutput: String?) throws -> InstalledServices {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            return InstalledServices(directory: directory, previousOutput: previousOutput, records: [:])
        }
        guard isDirectory.boolValue else {
            throw ChpkiError.input(.fileUnreadable, file: directory, field: "--state", "is not a directory (the install records: one <fqdn>.json per host)")
        }
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw ChpkiError.input(.fileUnreadable, file: directory, field: "--state", "cannot be listed: \(error.localizedDescription)")
        }
        var records: [String: BundleManifest] = [:]
        for name in names.sorted() where name.hasSuffix(".json") {
            let host = String(name.dropLast(".json".count))
            guard HostName.problem(with: host) == nil, host == host.lowercased(), host.contains(".") else { continue }
            guard records.count < recordLimit else {
                throw ChpkiError.input(.fileTooLarge, file: directory, field: "--state", "holds more than \(recordLimit) records")
            }
            if let record = try InstallRecord.read(Path.join(directory, name), host: host) { records[host] = record }
        }
        return InstalledServices(directory: directory, previousOutput: previousOutput, records: records)
    }

    /// Whether `host`'s record holds any file of `service`.
    public func runs(_ host: String, _ service: String) -> Bool {
        records[host]?.files.contains { $0.service == service } ?? false
    }

    /// Every recorded host whose record holds files of `service`, by name.
    public func hosts(running service: String) -> [String] {
        records.keys.filter { runs($0, service) }.sorted()
    }

    /// The sha256 the record of `host` gives `path`, nil when it has no such file.
    public func recordedDigest(_ host: String, _ path: String) -> String? {
        records[host]?.files.first { $0.path == path }?.sha256
    }

    /// The bytes `host` has at `path`, as far as chpki can find them again: the previous bundle's
    /// copy (`previousOutput/<fqdn>/<path>`) when its sha256 is the recorded one, else the first
    /// of `candidates` whose sha256 is; nil when none is (the record says nothing, or no copy is left).
    public func installedBytes(_ host: String, _ path: String, candidates: [Data] = []) -> Data? {
        guard let digest = recordedDigest(host, path) else { return nil }
        if let output = previousOutput,
           let data = RegularFile.contents(Path.join(output, host, path), limit: ReadLimits.template),
           (try? BundleManifest.sha256(data)) == digest {
            return data
        }
        return candidates.first { (try? BundleManifest.sha256($0)) == digest }
    }
}
