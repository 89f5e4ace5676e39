import Foundation

/// What the libFuzzer targets in `Fuzz/` call: each entry point feeds untrusted bytes to exactly
/// the reader a command uses and swallows what it throws. A thrown error is a correct refusal;
/// only a trap, a crash or a sanitizer report is a finding (SPEC §8: no input makes chpki crash).
/// Public so the sanitized fuzz build needs no `@testable import`; nothing in chpki calls these.
public enum FuzzEntry {
    /// `install-frontend FILE` and `install-backend FILE` up to the installer: gzip magic or CMS
    /// envelope, gunzip, tar, `MANIFEST.json`, each member against it and the layout, then the
    /// validation of the files. An envelope is refused at the passphrase: its KDF cost is the
    /// file's to choose, which makes a slow input, not a crash, and OpenSSL's CMS parser is not
    /// ours to fuzz.
    public static func frontendBundle(_ data: Data) {
        let noPassphrase = { () throws -> Passphrase in throw ChpkiError(.refused, "fuzz: no passphrase") }
        _ = try? FrontendBundleReader.open(data, file: "fuzz.tar.gz", passphrase: noPassphrase)
        _ = try? BackendSecretsBundle.open(data, file: "fuzz.tar.gz", passphrase: noPassphrase)
    }

    /// The same readers with the fuzzed bytes as the tar inside the gzip, so that mutations reach
    /// the header fields, the manifest and the member checks instead of dying in inflate.
    public static func tar(_ data: Data) {
        guard let archive = try? Gzip.compress(data, level: 1) else { return }
        frontendBundle(archive)
    }

    /// `--inventory FILE`: the YAML text as `Inventory.load` reads it.
    public static func inventory(_ data: Data) {
        _ = try? Inventory.parse(yaml: String(decoding: data, as: UTF8.self), path: "fuzz.yml")
    }

    /// `inspect FILE` without a passphrase: PEM blocks (or one DER certificate), each parsed, then
    /// the JSON report and the human summary written to nowhere.
    public static func inspect(_ data: Data) {
        guard let items = try? InspectCommand.items(in: data, file: "fuzz.pem", passphrase: { nil }) else { return }
        let discard: (String) -> Void = { _ in }
        try? Reporter(json: true, quiet: false, verbose: false, standardOutput: discard, standardError: discard)
            .emit(InspectCommand.Report(file: "fuzz.pem", items: items))
        let human = Reporter(json: false, quiet: false, verbose: false, standardOutput: discard, standardError: discard)
        for item in items { InspectCommand.describe(item, reporter: human) }
    }

    /// The frontend's `private-*-secrets.json` (veil v2, veil in clear, legacy flat).
    public static func veil(_ data: Data) {
        _ = try? VeilSecrets.parse(data)
    }
}
