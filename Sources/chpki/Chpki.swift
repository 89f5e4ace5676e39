import ArgumentParser

struct Chpki: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chpki",
        abstract: "An offline X.509 PKI and secrets toolkit for Cinc/Chef Infra Server clusters.",
        discussion: """
            One declarative file (cluster.yml) describes the cluster; chpki keeps an offline root CA, \
            issues every certificate the cluster needs, and lays the files out where each service \
            expects them. Start with 'chpki demo', then 'chpki init-ca'.

            Exit status: 0 success, 1 a check failed, 2 bad input or refusal (nothing was changed), \
            3 a change was committed but a file derived from ca.db is stale (the next command rewrites it).
            """,
        version: ChpkiVersion.full,
        subcommands: [InitCA.self, Issue.self, NodesDNList.self, List.self, Bundle.self, Verify.self, Expiring.self, Renew.self, Revoke.self, CRL.self, RotateCA.self, PassphraseGroup.self, Inspect.self, BundleFrontend.self, InstallFrontend.self, BundleBackend.self, InstallBackend.self, TemplatesGroup.self, RolloutPlanCommand.self, RolloutRun.self, RolloutCheck.self, Demo.self]
    )
}
