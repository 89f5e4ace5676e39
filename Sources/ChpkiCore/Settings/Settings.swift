import Foundation

/// The global options of SPEC §1 after defaults and environment variables are applied.
public struct Settings: Sendable {
    public static let defaultCADirectory = "./ca"
    public static let defaultInventory = "./cluster.yml"

    public var caDirectory: CADirectory
    public var inventoryPath: String
    /// True when the operator named the inventory (flag or env): then it must exist.
    public var inventoryExplicit: Bool
    public var environment: [String: String]
    /// `--root-passphrase-file`, on the commands that may need the root key (SPEC §6).
    public var rootPassphraseFile: String?

    public init(caDirectory: String?, inventory: String?, environment: [String: String] = ProcessInfo.processInfo.environment) {
        let directory = caDirectory ?? environment["CHPKI_CA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultCADirectory
        let inventoryOverride = inventory ?? environment["CHPKI_INVENTORY"].flatMap { $0.isEmpty ? nil : $0 }
        self.caDirectory = CADirectory(path: directory)
        self.inventoryPath = inventoryOverride ?? Self.defaultInventory
        self.inventoryExplicit = inventoryOverride != nil
        self.environment = environment
    }

    /// The inventory, or nil when none was named and `./cluster.yml` does not exist.
    public func inventoryIfPresent() throws -> Inventory? {
        if !inventoryExplicit && !FileManager.default.fileExists(atPath: inventoryPath) { return nil }
        return try requireInventory()
    }

    public func requireInventory() throws -> Inventory {
        guard FileManager.default.fileExists(atPath: inventoryPath) else {
            throw ChpkiError.input(.fileMissing, file: inventoryPath, field: "--inventory", "no such file")
        }
        return try Inventory.load(path: inventoryPath)
    }

    public func now() throws -> Date { try Now.current(environment: environment) }
}
