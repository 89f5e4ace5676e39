import ChpkiInventory

// Foundation has a `Host` too; across modules the name is ambiguous, so this target names the
// inventory's once (as ChpkiCore does).
public typealias Host = ChpkiInventory.Host
