import ArgumentParser
import ChpkiCore

/// The commands whose report a next step may follow: every subcommand takes the global options.
protocol TakesGlobalOptions {
    var global: GlobalOptions { get }
}

/// What to do after a command that changed something (SPEC §7 "Progress"): the operator's path
/// init-ca → issue → bundle → install → timers, one table in one place. Printed as the human
/// report's last line(s), one `next:` line and its continuations; never with --json or --quiet.
/// A step that is a chpki command is complete, `COMMAND    # why`: it carries the options the
/// command will need (--ca-dir, --inventory, --passphrase-file as given), so it runs as printed
/// (a shell drops the `#` comment).
enum NextStep {
    static func steps(after command: ParsableCommand) -> [String] {
        switch command {
        case is InitCA:
            return [step("chpki issue\(carried(command))", "signs every certificate the inventory implies; --dry-run shows the plan")]
        case let issue as Issue:
            let prune = issue.prune || issue.waitingToRetire > 0 ? " --prune" : ""
            if issue.dryRun {
                let retiring = issue.waitingToRetire > 0 ? " and retires the \(issue.waitingToRetire) shown as 'retire'" : ""
                return [step("chpki issue\(carried(command))\(prune)", "signs what the plan shows\(retiring)")]
            }
            let bundle = step("chpki bundle --out bundles --tar\(carried(command))", "one tree and HOST.tar.gz per host")
            guard issue.waitingToRetire > 0 else { return [bundle] }
            return [step("chpki issue --prune\(carried(command))", "revokes the \(issue.waitingToRetire) shown as 'retire' and publishes the CRLs"),
                    "then \(bundle)"]
        case let oneOff as OneOffIssue:
            if let out = oneOff.output.out { return ["copy the .crt and .key in \(out) to the host (the key is 0600: keep it so)"] }
            return [step("chpki list\(carried(command, passphrase: false))", "the certificate and key are in ca.db; --out DIR writes them as files")]
        case is Renew:
            return [step("chpki bundle --out bundles --tar\(carried(command))",
                         "then install each host's archive; chpki-rotate does both and reloads only the services whose files changed")]
        case let bundle as Bundle:
            let install = bundle.tar
                ? "then copy \(bundle.out)/HOST.tar.gz to each host and, as root there: tar -xzpf HOST.tar.gz -C / && chpki verify --installed"
                : "then install \(bundle.out)/HOST/ on each host (or re-run with --tar for one archive per host)"
            return [step("chpki verify --bundle \(quoted(bundle.out))\(carried(command))", "checks the trees; chpki-rotate installs only what changed")]
                + bundle.membershipSteps.map { "then \($0)" } + [install]
        case is Revoke:
            return ["copy \(caDirectory(command))/crl.pem to every service that checks revocation; chpki issue re-issues a host that stays"]
        case is CRL:
            return ["copy \(caDirectory(command))/crl.pem to every service that checks revocation, before its nextUpdate"]
        case let rotate as RotateCA:
            if rotate.finish {
                return [step("chpki bundle --out bundles --tar\(carried(command))", "then chpki rollout --bundles bundles: the old root leaves every trust file")]
            }
            return [step("chpki issue\(carried(command))", "phase 1: re-issues every leaf under the new root"),
                    "then chpki bundle --out bundles --tar\(carried(command)) and chpki rollout --bundles bundles\(carried(command, passphrase: false)) (phase 2: both roots trusted on every host, then the new leaves)",
                    "then chpki rotate-ca --finish\(carried(command)) (phase 3: refused until every host's record shows the new root's leaves)"]
        case let frontend as BundleFrontend:
            guard frontend.compare.isEmpty, let out = frontend.output.out else { return [] }
            return ["copy \(out) to the new frontend and run there: chpki install-frontend \(Path.name(of: out)) --root /"]
        case let install as InstallFrontend:
            // After a real install the report names the frontend's own ctl (cinc- or chef-server-ctl).
            return install.install.dryRun ? [step("chpki install-frontend\(rerun(install.install))", "without --dry-run, to write the files")] : []
        case let install as InstallBackend:
            return install.install.dryRun ? [step("chpki install-backend\(rerun(install.install))", "without --dry-run, to write the file")] : []
        case let backend as BundleBackend:
            guard let out = backend.output.out else { return [] }
            return ["copy \(out) to the joining backend and run there: chpki install-backend \(Path.name(of: out)) --root /"]
        default:
            return []
        }
    }

    /// An install's own arguments but --dry-run.
    static func rerun(_ install: SecretBundleInstallArguments) -> String {
        var text = " \(quoted(install.file)) --root \(quoted(install.root))"
        if install.force { text += " --force" }
        if let file = install.passphraseFile { text += " --passphrase-file \(quoted(file))" }
        return text
    }

    /// A word as a POSIX shell reads it back: as is when it holds only safe characters, else in single quotes.
    static func quoted(_ word: String) -> String {
        let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-")
        if !word.isEmpty, word.allSatisfy(safe.contains) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// A command and why, as one pasteable line.
    static func step(_ command: String, _ why: String) -> String { "\(command)    # \(why)" }

    static func report(after command: ParsableCommand) {
        guard let global = (command as? TakesGlobalOptions)?.global else { return }
        global.makeReporter().next(steps(after: command))
    }

    /// The CA directory, inventory and passphrase file the operator named, so the step can be pasted.
    static func carried(_ command: ParsableCommand, passphrase: Bool = true) -> String {
        guard let global = (command as? TakesGlobalOptions)?.global else { return "" }
        var text = ""
        if let directory = global.caDirectory { text += " --ca-dir \(quoted(directory))" }
        if let inventory = global.inventory { text += " --inventory \(quoted(inventory))" }
        if passphrase, let file = passphraseFile(command) { text += " --passphrase-file \(quoted(file))" }
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
extension Verify: OpensCAKey {}
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
extension PassphraseChange: TakesGlobalOptions {}
extension RolloutPlanCommand: TakesGlobalOptions {}
