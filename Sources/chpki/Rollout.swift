import ArgumentParser
import ChpkiCore

struct RolloutPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout-plan",
        abstract: "The rollout plan: what each host gets, in an order safe across hosts.",
        discussion: """
            Compares each host tree of a bundle directory (DIR/<fqdn>/var/lib/chpki/MANIFEST.json, laid out by \
            'chpki bundle --out DIR') with the manifest that host last installed (STATE/<fqdn>.json; default \
            STATE: <ca-dir>/installed), and prints one plan in three phases: trust (every host whose trust files \
            change gets only those and runs its services' on_trust, before any leaf anywhere), leaves (the other \
            files and on_leaf, or on_config where a config file changed), cleanup (files no longer in a manifest are deleted). Each step is one host, in \
            name order, with the health checks of the services it touched: a quorum service restarts one host \
            at a time, each healthy before the next. What each service runs comes from MANIFEST.json (the \
            service descriptors' defaults); --operations FILE (YAML, per service: on_leaf, on_config, on_trust, on_start, serial, \
            health) replaces any of it for a site. A missing record means never installed (everything is added).

            Every record, manifest and operations file is read with a size limit and checked before anything \
            is planned: the schema, host and service names, only paths, owners and groups chpki's layouts \
            produce, commands as lists of words. One that fails is refused, exit 2, naming the file and the \
            field; no plan is printed, so nothing runs on any host.

            Output: a summary for people; --json: {phases: [{name, steps: [{host, copy, remove, run: [{service, \
            why, argv}], health: [{kind, address, port, server_name, cafile, certfile, keyfile, leaf, service, host}], \
            record}]}], orphans: [{host, record}]} (docs/deployment.md); --tsv: one tab-separated record per line \
            for chpki-rotate: 'host HOST same|install', 'remove HOST /PATH', 'reload HOST SERVICE WHY', 'left HOST \
            SERVICE WHY', 'orphan HOST'.

            Examples:
              chpki rollout-plan --bundles bundles --json
              chpki rollout-plan --bundles bundles --state /var/lib/chpki/installed --operations site-ops.yml
              chpki rollout-plan --recorded ca/installed/backend-1.example.com.json \\
                  --new bundles/backend-1.example.com/var/lib/chpki/MANIFEST.json
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The bundle directory (chpki bundle --out DIR).", valueName: "dir"), completion: .directory)
    var bundles: String?

    @Option(help: ArgumentHelp("What each host last installed: DIR/<fqdn>.json (missing: nothing yet). Default: <ca-dir>/installed.",
                               valueName: "dir"), completion: .directory)
    var state: String?

    @Option(help: ArgumentHelp("Site overrides of the services' operations (YAML: service -> on_leaf, on_config, on_trust, on_start, serial, health).",
                               valueName: "file"), completion: .file())
    var operations: String?

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
            guard bundles != nil else { throw ValidationError("give --bundles DIR (or --recorded FILE --new FILE)") }
        }
        if tsv && global.json { throw ValidationError("--tsv and --json: choose one") }
    }

    func run() throws {
        let plan: RolloutPlan
        let overrides = try operations.map(OperationsOverrides.read) ?? OperationsOverrides()
        if let recorded, let newManifest {
            plan = try RolloutPlan.pair(recorded: recorded, new: newManifest, operations: overrides)
        } else {
            plan = try RolloutPlan.make(bundles: bundles ?? "", state: state ?? InstalledRecords.defaultDirectory(caDirectory: global.settings.caDirectory.path),
                                        only: (hosts ?? "").split(separator: ",").map(String.init), force: force, operations: overrides)
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
