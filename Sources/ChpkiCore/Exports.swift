import ChpkiBundles
import ChpkiCA
import ChpkiInventory
import ChpkiRollout

// ChpkiCore re-exports the layers below it, so the executable and the tests that `import ChpkiCore`
// see the whole public API as before the split (docs/architecture.md, "Targets"). A lower target
// never imports ChpkiCore: the package graph does not allow it.
@_exported import ChpkiBase
@_exported import ChpkiModel
@_exported import ChpkiOpenSSL
@_exported import ChpkiPlatform
@_exported import ChpkiInventory
@_exported import ChpkiCA
@_exported import ChpkiReporting
@_exported import ChpkiSecretBundles
@_exported import ChpkiBundles
@_exported import ChpkiRollout

// Foundation has a `Host` too; inside one module the module's own type won, across modules the name
// is ambiguous, so ChpkiCore names the inventory's host once.
public typealias Host = ChpkiInventory.Host
