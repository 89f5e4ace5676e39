import ArgumentParser
import ChpkiCore

struct Expiring: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List certificates (leaves and CAs) that expire within a window; exit 1 if any.",
        discussion: "Default window: each leaf's renew_before (the inventory's, else 30d) and 365d for CA certificates. Fit for a monitoring check or a timer. CHPKI_NOW (tests of a debug build only) moves 'now'."
    )

    @OptionGroup var global: GlobalOptions
    @Option(help: ArgumentHelp("The window, e.g. 30d, 12h or 90min (s, min, h, d, w, mo, y; m is months).", valueName: "period")) var within: String?

    func run() throws {
        try ExpiringCommand.run(within: within, settings: global.settings, reporter: global.makeReporter())
    }
}

struct Renew: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-issue what is due: same names, usages and lifetime, new serial; the same key unless --rekey.",
        discussion: "Due: within --within (default renew_before) of expiry, or issued by a CA that rotate-ca replaced. The old certificate becomes superseded. One transaction; a second run renews nothing."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions
    @Option(help: ArgumentHelp("Renew what expires within this period, e.g. 30d or 90min (s, min, h, d, w, mo, y; m is months).", valueName: "period")) var within: String?
    @Flag(help: "Generate new keys instead of keeping the old ones.") var rekey = false

    func run() throws {
        try RenewCommand.run(within: within, rekey: rekey, passphraseFile: key.passphraseFile, settings: global.settings,
                             reporter: global.makeReporter())
    }
}

struct Revoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Revoke a certificate (by serial) or every certificate of a host (HOST or HOST/SERVICE), and sign a new CRL.",
        discussion: "index.txt marks the revocation, so 'openssl ocsp -index' answers revoked. Reasons: \(RevocationReason.allCases.map(\.rawValue).joined(separator: ", "))."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions
    @Argument(help: ArgumentHelp("A serial (hex), a host, or host/service.", valueName: "serial|host[/service]"), completion: Completions.hostsAndServices) var target: String
    @Option(help: "The CRL reason.") var reason: RevocationReason = .unspecified

    func run() throws {
        try RevokeCommand.revoke(target, reason: reason, passphraseFile: key.passphraseFile, settings: global.settings,
                                 reporter: global.makeReporter())
    }
}

struct CRL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crl",
        abstract: "Sign a fresh CRL (v2, next cRLNumber) into ca/crl.pem.",
        discussion: "Run it from a timer before the CRL's nextUpdate; revoke signs one by itself."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions
    @Option(help: ArgumentHelp("How long until nextUpdate, e.g. 30d, 12h or 90min (s, min, h, d, w, mo, y; m is months; at most 3650d). Default: 30d.", valueName: "period"))
    var lifetime: String?
    @Option(help: ArgumentHelp("Days until nextUpdate: the older form of --lifetime Nd.", valueName: "n")) var days: Int?

    func run() throws {
        try RevokeCommand.crl(lifetime: lifetime, days: days, passphraseFile: key.passphraseFile, settings: global.settings, reporter: global.makeReporter())
    }
}

struct RotateCA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-ca",
        abstract: "Start a CA rotation (new root, cross-signed by the old, trust bundle of both), or --finish it.",
        discussion: """
            Three phases. 1: 'chpki rotate-ca' makes the new root; 'chpki issue' re-issues every leaf under it. \
            2: 'chpki bundle' and 'chpki rollout': every host trusts both roots first (phase trust), then gets its new \
            leaves (phase leaves), and is recorded in <ca-dir>/installed. 3: 'chpki rotate-ca --finish' retires the old \
            root, then 'chpki bundle' and 'chpki rollout' take it out of every trust file.

            --finish refuses (exit 2) while a live leaf still chains only to the old root, and while an inventory \
            host's install record (--state DIR, default <ca-dir>/installed) does not show trust holding the new root \
            and only leaves from it; the message names the hosts and what they still have. A site that installs \
            without chpki's rollout gives --force-unrecorded and vouches for its hosts. Details: docs/lifecycle.md.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var key: CAKeyOptions
    @OptionGroup var rootKey: RootKeyOptions
    @Flag(help: "Retire the old root.") var finish = false
    @Option(help: ArgumentHelp("With --finish: the install records to check, DIR/<fqdn>.json. Default: <ca-dir>/installed.", valueName: "dir"),
            completion: .directory)
    var state: String?
    @Flag(help: "With --finish: do not check the hosts' install records (hosts installed without chpki's rollout).")
    var forceUnrecorded = false

    func validate() throws {
        if !finish && (state != nil || forceUnrecorded) { throw ValidationError("--state and --force-unrecorded go with --finish") }
        if state != nil && forceUnrecorded { throw ValidationError("--state and --force-unrecorded: choose one") }
    }

    func run() throws {
        try RotateCACommand.run(finish: finish, passphraseFile: key.passphraseFile, settings: rootKey.applied(to: global.settings),
                                reporter: global.makeReporter(), state: state, forceUnrecorded: forceUnrecorded)
    }
}

extension RevocationReason: ExpressibleByArgument {}
