import Foundation
import ChpkiBase

/// The one rule for a directory or file whose contents chpki acts on with its own privileges (a
/// target directory of an install, a template override): it belongs to root or to the user chpki
/// runs as, and nobody else can write in it. Anyone else who could would choose what chpki
/// installs or ships. `RootedDirectory` (installs) and `TrustedDirectory` (overrides) each word the
/// refusal for their reader; the rule is here.
public enum OwnershipRule {
    public enum Violation: Sendable, Equatable {
        /// Owned by a user not in `owners`.
        case foreignOwner
        /// Group or other write bit set (a sticky bit does not help: new names can still appear).
        case writableByOthers
    }

    /// Root, and the invoking user when chpki does not run as root.
    public static var owners: [uid_t] { Accounts.isRoot ? [0] : [0, geteuid()] }

    /// Every way `status` breaks the rule, in that order; empty when it holds.
    public static func violations(_ status: FileStatus, owners: [uid_t] = owners) -> [Violation] {
        var found: [Violation] = []
        if !owners.contains(status.uid) { found.append(.foreignOwner) }
        if status.mode & 0o022 != 0 { found.append(.writableByOthers) }
        return found
    }
}
