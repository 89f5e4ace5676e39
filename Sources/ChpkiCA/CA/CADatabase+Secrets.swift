import Foundation
import GRDB
import ChpkiBase
import ChpkiModel
import ChpkiOpenSSL
import ChpkiPlatform
import ChpkiInventory

/// Which secret wraps which key (SPEC §6 "Two secrets"): the meta row `root_key_apart` says that
/// the root keys are under their own passphrase. Without it (a CA made with one passphrase, or
/// `--no-intermediate`) they are under the operations passphrase, as every other key. No schema
/// change: a CA of an earlier release reads as a one-passphrase CA and keeps working.
extension CADatabase {
    static let rootKeyApartMeta = "root_key_apart"

    /// Whether the root keys are wrapped under the root passphrase, apart from the operations one.
    public func rootKeyApart() throws -> Bool {
        try read { db in try Self.meta(db, Self.rootKeyApartMeta) == "1" }
    }

    /// Marks a CA being created (init-ca's staging database) as keeping its root apart.
    func markRootKeyApart() throws {
        try change({ _ in "the root key kept apart" }) { db in try Self.setMeta(db, Self.rootKeyApartMeta, "1") }
    }

    /// `passphrase change`: the re-wrapped CA keys (serial -> encrypted PEM), the data key's new
    /// wrap (when the operations passphrase changed) and whether the root is now apart, in ONE
    /// transaction: killed at any point, every key opens with the old passphrases or every one
    /// with the new.
    public func rewrapKeys(_ keys: [SerialNumber: Data], leafKeyWrap: LeafKeyVault.Wrap?, rootKeyApart: Bool) throws {
        try change({ _ in "the CA keys re-wrapped under the new passphrase" }) { db in
            for (serial, pem) in keys {
                try db.execute(sql: "UPDATE certificates SET authority_key_pem = ? WHERE serial = ? AND authority_key_pem IS NOT NULL",
                               arguments: [String(decoding: pem, as: UTF8.self), serial.hex])
                guard db.changesCount == 1 else {
                    throw ChpkiError.input(.caKeyMismatch, file: Self.fileName, field: serial.hex, "the CA key changed under the passphrase change")
                }
            }
            if let leafKeyWrap { try Self.setMeta(db, Meta.leafKeyWrap, try Self.json(leafKeyWrap)) }
            if rootKeyApart {
                try Self.setMeta(db, Self.rootKeyApartMeta, "1")
            } else {
                try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [Self.rootKeyApartMeta])
            }
        }
    }
}
