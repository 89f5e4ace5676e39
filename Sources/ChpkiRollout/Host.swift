import ChpkiInventory

// Foundation has a `Host` too; across modules the name is ambiguous, so this target names the
// inventory's once (as ChpkiCA and ChpkiCore do).
public typealias Host = ChpkiInventory.Host
