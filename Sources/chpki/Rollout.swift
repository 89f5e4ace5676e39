import ArgumentParser
import ChpkiCore

struct RolloutPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout-plan",
        abstract: "What each host must get: its new bundle against the manifest it last installed.",
        discussion: """
            Compares each host tree of a bundle directory (DIR/<fqdn>/var/lib/chpki/MANIFEST.json, laid out by \
            'chpki bundle --out DIR') with the manifest that host last installed (STATE/<fqdn>.json, recorded by \
            chpki-rotate), and prints per host: unchanged or install; each file or directory added, changed \
            (sha256, mode, owner, group) or removed; the files to delete on the host (absolute paths); the \
            services to reload, trust first, then in the order of their first changed path (a service with no \
            file left on the host is named as left, never reloaded); and the hosts with a record but no bundle. \
            A missing record means never installed (everything is added).

            Every record and manifest is read with a size limit and checked before anything is planned: the \
            manifest schema, host and service names (DNS labels), and only paths, owners and groups chpki's \
            service layouts produce. One that fails is refused, exit 2, naming the file and the field; no plan \
            is printed, so nothing runs on any host.

            Output: a summary for people; --json, one document {hosts: [{host, manifest, record, install, \
            changes: [{kind, path, change, service}], remove, services: [{name, why, remains}]}], orphans: \
            [{host, record}]}; --tsv, one tab-separated record per line for shell scripts: 'host HOST \
            same|install', 'remove HOST /PATH', 'reload HOST SERVICE WHY', 'left HOST SERVICE WHY', \
            'orphan HOST'. Every field but WHY is a checked name or path (no space, tab, newline or shell \
            metacharacter).

            Examples:
              chpki rollout-plan --bundles bundles --state bundles.installed --json
              chpki rollout-plan --recorded bundles.installed/backend-1.example.com.json \\
                  --new bundles/backend-1.example.com/var/lib/chpki/MANIFEST.json
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The bundle directory (chpki bundle --out DIR).", valueName: "dir"), completion: .directory)
    var bundles: String?

    @Option(help: ArgumentHelp("What each host last installed: DIR/<fqdn>.json (missing: nothing yet).", valueName: "dir"), completion: .directory)
    var state: String?

    @Option(help: ArgumentHelp("Only these hosts (FQDNs or short names, comma-separated).", valueName: "h1,h2"))
    var hosts: String?

    @Flag(help: "Ignore the records: every selected host is installed in full (a rebuilt host).")
    var force = false

    @Option(help: ArgumentHelp("One host: its recorded manifest (instead of --bundles/--state).", valueName: "file"), completion: .file())
    var recorded: String?

    @Option(name: .customLong("new"), help: ArgumentHelp("One host: its new MANIFEST.json (with --recorded).", valueName: "file"), completion: .file())
    var newManifest: String?

    @Flag(help: "One tab-separated record per line (for chpki-rotate).")
    var tsv = false

    func validate() throws {
        let pair = recorded != nil || newManifest != nil
        if pair {
            guard recorded != nil, newManifest != nil else { throw ValidationError("--recorded and --new go together") }
            guard bundles == nil, state == nil, hosts == nil, !force else {
                throw ValidationError("--recorded/--new compare one host; --bundles, --state, --hosts and --force are for a bundle directory")
            }
        } else {
            guard bundles != nil, state != nil else { throw ValidationError("give --bundles DIR and --state DIR (or --recorded FILE --new FILE)") }
        }
        if tsv && global.json { throw ValidationError("--tsv and --json: choose one") }
    }

    func run() throws {
        let plan: RolloutPlan
        if let recorded, let newManifest {
            plan = try RolloutPlan.pair(recorded: recorded, new: newManifest)
        } else {
            plan = try RolloutPlan.make(bundles: bundles ?? "", state: state ?? "",
                                        only: (hosts ?? "").split(separator: ",").map(String.init), force: force)
        }
        let reporter = global.makeReporter()
        if tsv {
            print(plan.lines, terminator: "")
            return
        }
        try reporter.emit(plan)
        for line in plan.summary { reporter.line(line) }
    }
}
