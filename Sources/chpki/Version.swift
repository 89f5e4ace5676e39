/// The version `chpki --version` prints: `<base>+<build>`. A plain `swift build` says
/// `0.1.0+dev`; scripts/package rewrites `build` in its copy of the tree to the package's
/// `<commits>.g<commit>` (the line's form is what it looks for), so the binary names exactly the
/// .deb it came in and the package stays a function of the commit.
enum ChpkiVersion {
    static let base = "0.1.0"
    static let build = "dev"

    static var full: String { "\(base)+\(build)" }
}
