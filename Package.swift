// swift-tools-version:6.1
import PackageDescription

// Linux only (Debian 12 and kin): chpki uses Glibc, prctl, /proc and flock; no other platform is claimed.
let package = Package(
    name: "chpki",
    products: [
        .executable(name: "chpki", targets: ["chpki"]),
        .library(name: "ChpkiCore", targets: ["ChpkiCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.0"),
    ],
    targets: [
        // OpenSSL 3 from libssl-dev; the only C the project links besides SQLite.
        .systemLibrary(
            name: "CChpkiOpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // zlib from zlib1g-dev, for the gzip of `bundle --tar`.
        .systemLibrary(
            name: "CChpkiZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // prctl(2) and the passphrase prompt's signal handler: what Swift cannot call or write safely.
        .systemLibrary(name: "CChpkiPOSIX"),
        // The layers, lowest first: each target may import only the ones listed as its dependencies,
        // so an arrow pointing up does not compile (docs/architecture.md, "Targets").
        // ChpkiBase: ChpkiError and its codes, time, ParallelResults; imports nothing of chpki.
        .target(name: "ChpkiBase"),
        // ChpkiModel: the value types and the naming rules they carry (HostName, ServiceName, DN, ...).
        .target(name: "ChpkiModel", dependencies: ["ChpkiBase"]),
        // ChpkiOpenSSL: the ONLY target that links OpenSSL; keys, certificates, CRLs, CSRs, PEM,
        // PKCS#8, AEAD, KDF, CMS envelopes, signing workers, the TLS probe client.
        .target(name: "ChpkiOpenSSL", dependencies: ["ChpkiBase", "ChpkiModel", "CChpkiOpenSSL"]),
        // ChpkiPlatform: the POSIX calls (atomic files, flock, rooted directories, fresh trees,
        // subprocesses, the terminal, process hygiene) and the archive formats (ustar, gzip).
        .target(name: "ChpkiPlatform", dependencies: ["ChpkiBase", "CChpkiPOSIX", "CChpkiZlib"]),
        // ChpkiReporting: what a command prints (Reporter: human text or one JSON document, every
        // message escaped by ControlCharacters; ProgressTicker, a ProgressSink; Table). The layers
        // above it report through it; the wording of errors (ErrorReport) stays with the commands.
        .target(name: "ChpkiReporting", dependencies: ["ChpkiBase", "ChpkiPlatform"]),
        // ChpkiInventory: cluster.yml and ansible-inventory read into an Inventory, every field checked.
        .target(
            name: "ChpkiInventory",
            dependencies: ["ChpkiBase", "ChpkiModel", "ChpkiPlatform", .product(name: "Yams", package: "Yams")]
        ),
        // ChpkiCA: the CA core. CASession and CADatabase (GRDB: the only SQL), CAFiles, issuance
        // (naming rules, plans, BatchIssuer), lifecycle (renewal, revocation, CRLs, rotation), the
        // passphrase sources and the leaf-key vault. Progress reaches it through ChpkiBase's ProgressSink.
        .target(
            name: "ChpkiCA",
            dependencies: [
                "ChpkiBase", "ChpkiModel", "ChpkiOpenSSL", "ChpkiPlatform", "ChpkiInventory",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // ChpkiSecretBundles: the frontend and Chef Backend secret bundles (one SecretBundleLayout
        // table, FrontendFlavor, the veil reader, the archive, the rooted installer).
        .target(
            name: "ChpkiSecretBundles",
            dependencies: ["ChpkiBase", "ChpkiModel", "ChpkiOpenSSL", "ChpkiPlatform", "ChpkiCA", "ChpkiReporting"]
        ),
        // ChpkiBundles: the per-host bundles. ServiceBundle descriptors (Services/), ClusterFacts,
        // BundlePlan, BundleWriter, BundleManifest with what it embeds (ServiceOperations,
        // HealthCheck) and its strict reader (InstallRecord, InstallPaths), BundleVerifier, Templates.
        // It reads FrontendFlavor (where a frontend's nginx files go) from ChpkiSecretBundles.
        .target(
            name: "ChpkiBundles",
            dependencies: [
                "ChpkiBase", "ChpkiModel", "ChpkiOpenSSL", "ChpkiPlatform", "ChpkiInventory", "ChpkiCA",
                "ChpkiReporting", "ChpkiSecretBundles",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            plugins: [.plugin(name: "EmbedTemplates")]
        ),
        // ChpkiRollout: `chpki rollout-plan` and `rollout-run` (ManifestDiff, RolloutPlan, the
        // executor and its health probes, the site's operations overrides, the rotation gate).
        // It reads ChpkiBundles' manifests; ChpkiBundles never reads it.
        .target(
            name: "ChpkiRollout",
            dependencies: [
                "ChpkiBase", "ChpkiModel", "ChpkiOpenSSL", "ChpkiPlatform", "ChpkiInventory", "ChpkiCA",
                "ChpkiReporting", "ChpkiBundles",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // ChpkiCore: the commands, settings, the wording of errors, the demo and the fuzz entry points.
        .target(
            name: "ChpkiCore",
            dependencies: [
                "ChpkiBase",
                "ChpkiModel",
                "ChpkiOpenSSL",
                "ChpkiPlatform",
                "ChpkiInventory",
                "ChpkiCA",
                "ChpkiReporting",
                "ChpkiSecretBundles",
                "ChpkiBundles",
                "ChpkiRollout",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // Compiles templates/*.mustache into ChpkiBundles at build time, so an installed binary needs
        // no files beside it (SPEC §4, §7). The tool is the plugin's; it is not installed.
        .plugin(
            name: "EmbedTemplates",
            capability: .buildTool(),
            dependencies: ["TemplateEmbedder"]
        ),
        .executableTarget(name: "TemplateEmbedder"),
        .executableTarget(
            name: "chpki",
            dependencies: [
                "ChpkiCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "ChpkiCoreTests",
            // The lower targets too: a test of their internals says `@testable import ChpkiOpenSSL`.
            dependencies: [
                "ChpkiCore", "ChpkiBase", "ChpkiModel", "ChpkiOpenSSL", "ChpkiPlatform", "ChpkiInventory", "ChpkiCA",
                "ChpkiReporting", "ChpkiSecretBundles", "ChpkiBundles", "ChpkiRollout",
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
