/// Where a long batch (signing, bundles) reports how far it got. The layer that runs the batch owns
/// this protocol; the command layer's `ProgressTicker` draws it, so a core type never calls up into
/// the reporter.
public protocol ProgressSink: AnyObject, Sendable {
    /// Counts `count` more items done. Called from any thread.
    func advance(by count: Int)
    /// Ends the batch's progress (the last line, if one was drawn).
    func finish()
}

extension ProgressSink {
    public func advance() { advance(by: 1) }
}
