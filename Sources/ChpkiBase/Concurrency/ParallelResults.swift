import Dispatch
import Synchronization

/// One result per index of a batch that several threads work on (leaves to sign, host trees to
/// stage). Worker `w` of `n` takes indexes w, w+n, w+2n, ... (strided, not chunked: a batch often
/// mixes slow and fast items kind by kind), each with its own context (its OpenSSL objects); each
/// slot is written once, by the worker that owns its index. The first failure stops every worker
/// at its next index. The results are read all at once when the workers are done (`values()`),
/// or one by one in index order while they work (`take`), so that a consumer on the calling thread
/// (the database writer) runs beside them instead of after them.
public final class ParallelResults<Value: Sendable>: Sendable {
    private struct State {
        var slots: [Result<Value, any Error>?]
        var finished = 0
        /// A failure (of a slot or of a worker's context), or the consumer gave up: no new index is started.
        var stopped = false
        /// A worker that could not make its context has no slot to fail.
        var contextFailure: (any Error)?
        /// `take` sleeps until this many slots are filled (nil: nobody waits).
        var wakeWhenFinished: Int?
    }

    /// A consumer that has caught up with the workers sleeps until this many more slots are filled,
    /// not one: a wake-up per slot cost a batch of 5,000 leaves two context switches each.
    static var takeBatch: Int { 32 }

    public let count: Int
    private let state: Mutex<State>
    /// Signalled when `wakeWhenFinished` is reached, and on a stop, for `take`.
    private let progress = DispatchSemaphore(value: 0)
    private let workers = DispatchGroup()

    public init(count: Int) {
        self.count = count
        state = Mutex(State(slots: Array(repeating: nil, count: count)))
    }

    public var failed: Bool { state.withLock { $0.stopped } }
    /// How many slots are filled.
    public var done: Int { state.withLock { $0.finished } }

    /// Runs `work` for every index on up to `workers` threads and returns when all are done;
    /// `filled(done)` is called on the worker's thread after each slot is filled.
    public func run<Context>(workers: Int, makeContext: @Sendable () throws -> Context, filled: @Sendable (Int) -> Void = { _ in },
                             _ work: @Sendable (Context, Int) throws -> Value) {
        let width = Self.width(workers, count)
        DispatchQueue.concurrentPerform(iterations: width) { worker in
            self.work(worker: worker, width: width, makeContext: makeContext, filled: filled, work)
        }
    }

    /// The same as `run` on threads of their own; returns at once. Read with `take`, then `wait`.
    public func start<Context>(workers: Int, makeContext: @escaping @Sendable () throws -> Context,
                               filled: @escaping @Sendable (Int) -> Void = { _ in },
                               _ work: @escaping @Sendable (Context, Int) throws -> Value) {
        let width = Self.width(workers, count)
        for worker in 0..<width {
            DispatchQueue.global(qos: .userInitiated).async(group: self.workers) {
                self.work(worker: worker, width: width, makeContext: makeContext, filled: filled, work)
            }
        }
    }

    /// Waits for the threads `start` began.
    public func wait() {
        workers.wait()
    }

    /// Slot `index` once its worker has filled it; nil when the batch stopped (a failure: `values()` throws it) first.
    public func take(_ index: Int) -> Result<Value, any Error>? {
        while true {
            // Set under the lock the workers count under: a target already reached is never waited for.
            let (slot, stopped, waits) = state.withLock { state in
                guard state.slots[index] == nil, !state.stopped else { return (state.slots[index], state.stopped, false) }
                let target = min(count, max(state.finished, index) + Self.takeBatch)
                state.wakeWhenFinished = target
                return (nil, false, true)
            }
            if let slot { return slot }
            if stopped { return nil }
            if waits { progress.wait() }
        }
    }

    /// Stops the workers at their next index (the consumer failed).
    public func stop() {
        state.withLock { $0.stopped = true }
        progress.signal()
    }

    /// Every value in index order, or the failure of the lowest index (else of a worker's context).
    public func values() throws -> [Value] {
        try state.withLock { state in
            for case let .failure(error)? in state.slots { throw error }
            if let failure = state.contextFailure { throw failure }
            return try state.slots.map { slot in
                guard let slot else { throw ChpkiError(.internalBug, "a parallel batch stopped before index \(state.slots.count) was done") }
                return try slot.get()
            }
        }
    }

    /// The values that were made, for undoing them after a failure.
    public var succeeded: [Value] {
        state.withLock { $0.slots.compactMap { slot in if case let .success(value)? = slot { value } else { nil } } }
    }

    private func work<Context>(worker: Int, width: Int, makeContext: () throws -> Context, filled: (Int) -> Void,
                               _ work: (Context, Int) throws -> Value) {
        let context: Context
        do { context = try makeContext() } catch {
            state.withLock { state in
                state.contextFailure = state.contextFailure ?? error
                state.stopped = true
            }
            progress.signal()
            return
        }
        var index = worker
        while index < count, !failed {
            let result = Result { try work(context, index) }
            let (done, wake) = state.withLock { state in
                state.slots[index] = result
                state.finished += 1
                if case .failure = result { state.stopped = true }
                let wake = state.stopped || state.wakeWhenFinished.map { state.finished >= $0 } ?? false
                if wake { state.wakeWhenFinished = nil }
                return (state.finished, wake)
            }
            if wake { progress.signal() }
            filled(done)
            index += width
        }
    }

    private static func width(_ workers: Int, _ count: Int) -> Int {
        max(1, min(workers, count))
    }
}
