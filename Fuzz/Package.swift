// swift-tools-version:6.1
// The libFuzzer targets for chpki's readers (SPEC §8: no input makes chpki crash). Not part of the
// root package's build or CI: `scripts/fuzz` builds this package with `-sanitize=fuzzer,address`
// on every Swift target (so ChpkiCore and Yams are instrumented too) and runs the fuzzers.
import Foundation
import PackageDescription

/// A path dependency's identity is its directory's name (`chpki`, or a worktree's name), so it is
/// taken from where this file is rather than written down.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootIdentity = root.lastPathComponent.lowercased()

/// One executable per reader; each defines `LLVMFuzzerTestOneInput` and hands it to libFuzzer's driver.
let fuzzers = ["FuzzFrontendBundle", "FuzzTar", "FuzzInventory", "FuzzInspect", "FuzzVeil", "FuzzTemplate", "FuzzState"]

let package = Package(
    name: "chpki-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .systemLibrary(name: "CLibFuzzer"),
        .target(name: "FuzzDriver", dependencies: ["CLibFuzzer"]),
    ] + fuzzers.map { name in
        .executableTarget(name: name, dependencies: ["FuzzDriver", .product(name: "ChpkiCore", package: rootIdentity)])
    },
    swiftLanguageModes: [.v6]
)
