/// The key algorithms chpki can generate, named as they are written in `cluster.yml` and on the command line.
public enum KeyType: String, CaseIterable, Sendable, Codable {
    case rsa2048 = "rsa-2048"
    case rsa3072 = "rsa-3072"
    case rsa4096 = "rsa-4096"
    case ecP256 = "ec-p256"
    case ecP384 = "ec-p384"
    case ed25519 = "ed25519"

    public var isRSA: Bool {
        switch self {
        case .rsa2048, .rsa3072, .rsa4096: return true
        default: return false
        }
    }

    /// "rsa-2048, rsa-3072, ..." for error messages and help.
    public static var allNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}
