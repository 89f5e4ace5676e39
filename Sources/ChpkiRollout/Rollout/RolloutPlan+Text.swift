import ChpkiBase
import ChpkiBundles
import Foundation

extension RolloutPlan {
    /// One host: the manifest at `new` against the record at `recorded` (missing: never installed).
    public static func pair(recorded: String, new: String, operations: OperationsOverrides = OperationsOverrides()) throws -> RolloutPlan {
        guard let fresh = try InstallRecord.read(new, host: nil) else { throw ChpkiError.input(.fileMissing, file: new, field: nil, "missing") }
        let input = HostInput(host: fresh.host, manifest: new, record: recorded,
                              recorded: try InstallRecord.read(recorded, host: fresh.host), new: fresh)
        return plan([input], orphans: [], operations: operations)
    }

    /// One record per line, tab-separated, for a shell script without a JSON parser (chpki-rotate).
    /// Every field is a checked host name, service name or path (no tab, newline, space or shell
    /// metacharacter) except the last field of `reload`/`left`, the human list of changed paths:
    ///   host HOST same|install     remove HOST /ABS/PATH     reload HOST SERVICE WHY
    ///   left HOST SERVICE WHY      orphan HOST
    public var lines: String {
        var out = ""
        for host in hosts {
            out += "host\t\(host.host)\t\(host.diff.same ? "same" : "install")\n"
            for path in host.diff.remove { out += "remove\t\(host.host)\t\(path)\n" }
            for service in host.diff.services {
                out += "\(service.remains ? "reload" : "left")\t\(host.host)\t\(service.name)\t\(service.why.joined(separator: ", "))\n"
            }
        }
        for orphan in orphans { out += "orphan\t\(orphan.host)\n" }
        return out
    }

    /// For people: each phase's steps, what they copy, delete, run and check.
    public var summary: [String] {
        var out: [String] = []
        for host in hosts where host.diff.same { out.append("\(host.host): unchanged since its last install") }
        for phase in phases where !phase.steps.isEmpty {
            out.append("phase \(phase.name):")
            for step in phase.steps {
                out.append("  \(step.host): copy \(step.copy.count) file(s)\(step.remove.isEmpty ? "" : ", delete \(step.remove.count)")\(step.record ? ", then record" : "")")
                for path in step.remove { out.append("    delete \(path)") }
                for command in step.run {
                    out.append("    \(command.service): \(command.argv.map(Self.shownWord).joined(separator: " "))")
                }
                for check in step.health {
                    out.append("    check \(check.service ?? "") \(check.kind.rawValue) \(check.address):\(check.port) as \(check.serverName)")
                }
            }
        }
        for orphan in orphans { out.append("\(orphan.host): installed before, no bundle now (\(orphan.record))") }
        if steps.isEmpty { out.append("nothing to roll out") }
        return out
    }

    /// A word as a POSIX shell would read it back, for display only (nothing runs this text).
    static func shownWord(_ word: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-")
        if !word.isEmpty, word.allSatisfy(safe.contains) { return word }
        return "'" + InstallPaths.shown(word).replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
