import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `chpki demo`: the whole pipeline on the built-in example, into one directory an operator can read.
public enum DemoCommand {
    public static let defaultOutput = "./chpki-demo"
    /// Marks a directory as made by `chpki demo`, so a re-run may replace it and nothing else.
    static let marker = ".chpki-demo"

    public static func run(output: String, reporter: Reporter) throws {
        try prepare(output)
        let inventoryPath = Path.join(output, "cluster.yml")
        let passphrasePath = Path.join(output, "ca-passphrase")
        let caPath = Path.join(output, "ca")
        try AtomicFile.write(Data(ExampleInventory.reference000.utf8), to: inventoryPath, mode: 0o644)
        // A fresh random passphrase, so the demo shows a real encrypted CA key.
        let passphrase = try randomBytes(24).map { String(format: "%02x", $0) }.joined()
        try AtomicFile.write(Data((passphrase + "\n").utf8), to: passphrasePath, mode: 0o600)

        let settings = Settings(caDirectory: caPath, inventory: inventoryPath, environment: [:])
        var options = InitCACommand.Options()
        options.passphraseFile = passphrasePath
        reporter.line("chpki demo: the cluster of reference 000 (\(inventoryPath))")
        reporter.line()
        try InitCACommand.run(options, settings: settings, reporter: reporter)
        reporter.line()
        try InspectCommand.run(.init(file: settings.caDirectory.file(CADirectory.rootKey), passphraseFile: passphrasePath),
                               settings: settings, reporter: reporter)
        reporter.line()
        reporter.line("chpki issue: every certificate the inventory implies")
        var issue = IssueCommand.Options()
        issue.passphraseFile = passphrasePath
        try IssueCommand.run(issue, settings: settings, reporter: reporter)
        reporter.line()
        reporter.line("chpki nodes-dn: the lines for opensearch.yml")
        reporter.line(try NodesDN(inventory: try settings.requireInventory()).yaml, terminator: "")
        reporter.line()
        reporter.line("chpki bundle: the files each host needs, with owners, modes and a manifest")
        var bundle = BundleCommand.Options()
        bundle.output = Path.join(output, "bundles")
        bundle.tar = true
        bundle.passphraseFile = passphrasePath
        try BundleCommand.run(bundle, settings: settings, reporter: reporter)
        reporter.line()
        reporter.line("chpki verify --bundle: every tree against what each service accepts")
        try VerifyCommand.run(bundle: bundle.output, settings: settings, reporter: reporter)
        reporter.line()
        reporter.line("Everything is in \(output):")
        reporter.line("  cluster.yml      the example inventory")
        reporter.line("  ca-passphrase    the random passphrase of the demo CA key (0600)")
        reporter.line("  ca/              the CA: root.pem, root.key, ca.db (every certificate; leaf keys sealed under the passphrase), index.txt, crl.pem")
        reporter.line("  bundles/         one filesystem tree per host (MANIFEST.json inside) and <host>.tar.gz")
        reporter.line("Try: chpki list --ca-dir \(caPath)")
        reporter.line("     tar -tvzf \(output)/bundles/backend-1.example.com.tar.gz")
        reporter.line("     openssl x509 -in \(caPath)/root.pem -noout -text")
    }

    /// Creates `output`, or empties it when an earlier demo made it; refuses any other non-empty directory.
    static func prepare(_ output: String) throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: output, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ChpkiError.input(file: output, field: "--out", "exists and is not a directory") }
            let contents = (try? manager.contentsOfDirectory(atPath: output)) ?? []
            if !contents.isEmpty {
                guard contents.contains(marker) else {
                    throw ChpkiError.input(file: output, field: "--out", "is not empty and was not made by chpki demo; choose another --out")
                }
                for entry in contents {
                    try manager.removeItem(atPath: Path.join(output, entry))
                }
            }
        } else {
            guard mkdir(output, 0o755) == 0 else {
                throw ChpkiError.input(file: output, field: "--out", POSIXFailure.last("cannot create the directory").message)
            }
        }
        try AtomicFile.write(Data("made by chpki demo; re-running the demo replaces this directory\n".utf8),
                             to: Path.join(output, marker), mode: 0o644)
    }
}
