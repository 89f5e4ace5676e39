import ArgumentParser
import ChpkiCore

/// The commands whose report a next step may follow: every subcommand takes the global options.
protocol TakesGlobalOptions {
    var global: GlobalOptions { get }
}

/// What to do after a command that changed something (SPEC §7 "Progress"): the operator's path
/// init-ca → issue → bundle → install → timers, one table in one place. Printed as the human
/// report's last line(s); never with --json or --quiet.
enum NextStep {
    static func steps(after command: ParsableCommand) -> [String] {
        switch command {
        case is InitCA:
            return ["chpki issue\(carried(command))    (signs every certificate cluster.yml implies; --dry-run shows the plan)"]
        case let issue as Issue:
            if issue.dryRun { return ["chpki issue\(carried(command))    (without --dry-run, to sign what the plan shows)"] }
            return ["chpki bundle --out bundles --tar\(carried(command))    (one tree and HOST.tar.gz per host)"]
        case let oneOff as OneOffIssue:
            if let out = oneOff.output.out { return ["copy the .crt and .key in \(out) to the host (the key is 0600: keep it so)"] }
            return ["chpki list\(carried(command, passphrase: false))    (the certificate and key are in ca.db; --out DIR writes them as files)"]
        case is Renew:
            return ["chpki bundle --out bundles --tar\(carried(command)), then install each host's archive",
                    "(chpki-rotate does both and reloads only the services whose files changed)"]
        case let bundle as Bundle:
            let archive = bundle.tar ? "\(bundle.out)/HOST.tar.gz" : nil
            return [
                archive.map { "copy \($0) to each host and, as root there: tar -xzpf HOST.tar.gz -C / && chpki verify --installed" }
                    ?? "install \(bundle.out)/HOST/ on each host (or re-run with --tar for one archive per host)",
                "chpki verify --bundle \(bundle.out) checks the trees; chpki-rotate installs only what changed",
            ]
        case is Revoke:
            return ["copy \(caDirectory(command))/crl.pem to every service that checks revocation; chpki issue re-issues a host that stays"]
        case is CRL:
            return ["copy \(caDirectory(command))/crl.pem to every service that checks revocation, before its nextUpdate"]
        case let rotate as RotateCA:
            if rotate.finish {
                return ["chpki bundle --out bundles --tar\(carried(command)) and install: trust files drop the old root"]
            }
            return ["chpki issue\(carried(command))    (re-issues every leaf under the new root)",
                    "then chpki bundle --out bundles --tar, install on every host, and chpki rotate-ca --finish"]
        case let frontend as BundleFrontend:
            guard frontend.compare.isEmpty, let out = frontend.output.out else { return [] }
            return ["copy \(out) to the new frontend and run there: chpki install-frontend \(Path.name(of: out)) --root /"]
        case let install as InstallFrontend:
            return install.install.dryRun ? ["chpki install-frontend \(install.install.file) (without --dry-run) to write the files"]
                                          : ["cinc-server-ctl reconfigure (chef-server-ctl reconfigure for a Chef frontend)"]
        case let backend as BundleBackend:
            guard let out = backend.output.out else { return [] }
            return ["copy \(out) to the joining backend and run there: chpki install-backend \(Path.name(of: out)) --root /"]
        case let install as InstallBackend:
            return install.install.dryRun ? ["chpki install-backend \(install.install.file) (without --dry-run) to write the file"]
                                          : ["chef-backend-ctl join-cluster LEADER_IP (reference 001, Step 3)"]
        default:
            return []
        }
    }

    static func report(after command: ParsableCommand) {
        guard let global = (command as? TakesGlobalOptions)?.global else { return }
        global.makeReporter().next(steps(after: command))
    }

    /// The CA directory, inventory and passphrase file the operator named, so the step can be pasted.
    static func carried(_ command: ParsableCommand, passphrase: Bool = true) -> String {
        guard let global = (command as? TakesGlobalOptions)?.global else { return "" }
        var text = ""
        if let directory = global.caDirectory { text += " --ca-dir \(directory)" }
        if let inventory = global.inventory { text += " --inventory \(inventory)" }
        if passphrase, let file = passphraseFile(command) { text += " --passphrase-file \(file)" }
        return text
    }

    static func caDirectory(_ command: ParsableCommand) -> String {
        (command as? TakesGlobalOptions)?.global.settings.caDirectory.path ?? Settings.defaultCADirectory
    }

    static func passphraseFile(_ command: ParsableCommand) -> String? {
        if let initCA = command as? InitCA { return initCA.passphraseFile }
        return (command as? OpensCAKey)?.key.passphraseFile
    }
}

/// The commands that take the CA passphrase option, so a next step can carry it.
protocol OpensCAKey {
    var key: CAKeyOptions { get }
}

extension Issue: OpensCAKey {}
extension Bundle: OpensCAKey {}
extension Renew: OpensCAKey {}
extension RotateCA: OpensCAKey {}

extension InitCA: TakesGlobalOptions {}
extension Issue: TakesGlobalOptions {}
extension IssueServer: TakesGlobalOptions {}
extension IssueClient: TakesGlobalOptions {}
extension IssueAdmin: TakesGlobalOptions {}
extension NodesDNList: TakesGlobalOptions {}
extension List: TakesGlobalOptions {}
extension Bundle: TakesGlobalOptions {}
extension Verify: TakesGlobalOptions {}
extension Expiring: TakesGlobalOptions {}
extension Renew: TakesGlobalOptions {}
extension Revoke: TakesGlobalOptions {}
extension CRL: TakesGlobalOptions {}
extension RotateCA: TakesGlobalOptions {}
extension Inspect: TakesGlobalOptions {}
extension BundleFrontend: TakesGlobalOptions {}
extension InstallFrontend: TakesGlobalOptions {}
extension BundleBackend: TakesGlobalOptions {}
extension InstallBackend: TakesGlobalOptions {}
extension TemplatesList: TakesGlobalOptions {}
extension TemplatesShow: TakesGlobalOptions {}
extension Demo: TakesGlobalOptions {}
