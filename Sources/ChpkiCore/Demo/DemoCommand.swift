import Foundation

/// `chpki demo`: the whole pipeline on the built-in example, into one directory an operator can read.
public enum DemoCommand {
    public static let defaultOutput = "./chpki-demo"
    /// Marks a directory as made by `chpki demo`, so a re-run may replace it and nothing else.
    static let marker = ".chpki-demo"

    public static func run(output: String, reporter: Reporter) throws {
        try prepare(output)
        let inventoryPath = Path.join(output, "cluster.yml")
        let passphrasePath = Path.join(output, "ca-passphrase")
        let rootPassphrasePath = Path.join(output, "root-passphrase")
        let caPath = Path.join(output, "ca")
        try AtomicFile.write(Data(ExampleInventory.reference000.utf8), to: inventoryPath, mode: 0o644)
        // Fresh random passphrases, so the demo shows real encrypted CA keys and the two secrets (SPEC §6).
        for path in [passphrasePath, rootPassphrasePath] {
            let passphrase = try randomBytes(24).map { String(format: "%02x", $0) }.joined()
            try AtomicFile.write(Data((passphrase + "\n").utf8), to: path, mode: 0o600)
        }

        let settings = Settings(caDirectory: caPath, inventory: inventoryPath, environment: [:])
        var steps = Steps(reporter: reporter)
        reporter.line("chpki demo: the cluster of reference 000 (\(inventoryPath))")
        reporter.line()
        try steps.run("init-ca", title: nil) { stepReporter in
            var options = InitCACommand.Options()
            options.passphraseFile = passphrasePath
            options.rootPassphraseFile = rootPassphrasePath
            try InitCACommand.run(options, settings: settings, reporter: stepReporter)
        }
        try steps.run("inspect", title: nil) { stepReporter in
            try InspectCommand.run(.init(file: settings.caDirectory.file(CADirectory.rootKey), passphraseFile: rootPassphrasePath),
                                   settings: settings, reporter: stepReporter)
        }
        try steps.run("issue", title: "chpki issue: every certificate the inventory implies") { stepReporter in
            var issue = IssueCommand.Options()
            issue.passphraseFile = passphrasePath
            try IssueCommand.run(issue, settings: settings, reporter: stepReporter)
        }
        try steps.run("nodes-dn", title: "chpki nodes-dn: the lines for opensearch.yml") { stepReporter in
            try NodesDNCommand.run(service: "opensearch", settings: settings, reporter: stepReporter)
        }
        var bundle = BundleCommand.Options()
        bundle.output = Path.join(output, "bundles")
        bundle.tar = true
        bundle.passphraseFile = passphrasePath
        try steps.run("bundle", title: "chpki bundle: the files each host needs, with owners, modes and a manifest") { stepReporter in
            try BundleCommand.run(bundle, settings: settings, reporter: stepReporter)
        }
        try steps.run("verify", title: "chpki verify --bundle: every tree against what each service accepts") { stepReporter in
            try VerifyCommand.run(bundle: bundle.output, settings: settings, reporter: stepReporter)
        }
        try steps.emit(output: output, inventory: inventoryPath, caDirectory: caPath, bundles: bundle.output)
        reporter.line("Everything is in \(output):")
        reporter.line("  cluster.yml      the example inventory")
        reporter.line("  ca-passphrase    the random operations passphrase: the intermediate and the leaf keys (0600)")
        reporter.line("  root-passphrase  the random root passphrase: root.key alone (0600)")
        reporter.line("  ca/              the CA: root.pem, root.key, ca.db (every certificate; leaf keys sealed under the passphrase), index.txt, crl.pem")
        reporter.line("  bundles/         one filesystem tree per host (MANIFEST.json inside) and <host>.tar.gz")
        reporter.line("Try: chpki list --ca-dir \(caPath)")
        reporter.line("     tar -tvzf \(output)/bundles/backend-1.example.com.tar.gz")
        reporter.line("     openssl x509 -in \(caPath)/root.pem -noout -text")
        reporter.next(["your own cluster: write cluster.yml (examples in /usr/share/chpki/examples or examples/), then chpki init-ca"])
    }

    /// The demo's steps: in the human report each prints its own section; with `--json` each step's
    /// report is collected and the demo prints one document holding them all (SPEC §1: one JSON
    /// document per command).
    struct Steps {
        let reporter: Reporter
        private var collected: [[String: Any]] = []

        init(reporter: Reporter) { self.reporter = reporter }

        mutating func run(_ command: String, title: String?, _ body: (Reporter) throws -> Void) throws {
            if let title { reporter.line(title) }
            guard reporter.json else {
                try body(reporter)
                reporter.line()
                return
            }
            let sink = JSONSink()
            try body(reporter.capturingJSON(into: sink.append))
            let report = try JSONSerialization.jsonObject(with: Data(sink.text.utf8))
            collected.append(["command": command, "report": report])
        }

        func emit(output: String, inventory: String, caDirectory: String, bundles: String) throws {
            guard reporter.json else { return }
            let document: [String: Any] = ["out": output, "inventory": inventory, "ca_dir": caDirectory, "bundles": bundles,
                                           "steps": collected]
            try reporter.emitRaw(JSONSerialization.data(withJSONObject: document,
                                                        options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]))
        }
    }

    /// Collects what a step writes to stdout under `--json`: exactly its one document.
    final class JSONSink: @unchecked Sendable {
        private(set) var text = ""
        func append(_ chunk: String) { text += chunk }
    }

    /// Creates `output`, or empties it when an earlier demo made it; refuses any other non-empty directory.
    static func prepare(_ output: String) throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: output, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ChpkiError.input(.outputUnusable, file: output, field: "--out", "exists and is not a directory") }
            let contents = (try? manager.contentsOfDirectory(atPath: output)) ?? []
            if !contents.isEmpty {
                guard contents.contains(marker) else {
                    throw ChpkiError.input(.outputNotEmpty, file: output, field: "--out", "is not empty and was not made by chpki demo; choose another --out")
                }
                for entry in contents {
                    try manager.removeItem(atPath: Path.join(output, entry))
                }
            }
        } else {
            do { try FileOperations.createDirectory(output, mode: 0o755) } catch let failure as POSIXFailure {
                throw ChpkiError.input(.outputUnusable, file: output, field: "--out", failure.message)
            }
        }
        try AtomicFile.write(Data("made by chpki demo; re-running the demo replaces this directory\n".utf8),
                             to: Path.join(output, marker), mode: 0o644)
    }
}
