import Foundation
import Synchronization
import Testing
@testable import ChpkiCore
@testable import ChpkiCA

/// The one parallel-results type (signing batches, bundle trees): results in index order whatever
/// the threads' timing, the first failure stops the batch and is the one thrown, and a consumer on
/// the calling thread takes the results in order while the workers go on.
@Suite("Parallel results")
struct ParallelResultsTests {
    struct Boom: Error, Equatable { var index: Int }

    @Test("values come back in index order, each made once by the worker that owns its index")
    func ordering() throws {
        let results = ParallelResults<Int>(count: 101)
        let calls = Mutex(0)
        results.run(workers: 3, makeContext: {}) { _, index in
            calls.withLock { $0 += 1 }
            if index % 7 == 0 { usleep(200) }  // out of order on purpose
            return index * index
        }
        #expect(try results.values() == (0..<101).map { $0 * $0 })
        #expect(calls.withLock { $0 } == 101)
        #expect(results.done == 101)
    }

    @Test("the first failure stops every worker at its next index and is the error thrown")
    func failureStops() {
        let results = ParallelResults<Int>(count: 10_000)
        results.run(workers: 2, makeContext: {}) { _, index in
            if index == 5 { throw Boom(index: 5) }
            return index
        }
        #expect(throws: Boom(index: 5)) { try results.values() }
        #expect(results.failed)
        #expect(results.done < 10_000)
        #expect(!results.succeeded.isEmpty)
    }

    @Test("a worker that cannot make its context fails the batch")
    func contextFailure() {
        let results = ParallelResults<Int>(count: 4)
        results.run(workers: 2, makeContext: { throw Boom(index: -1) }) { _, index in index }
        #expect(throws: Boom(index: -1)) { try results.values() }
    }

    @Test("a consumer takes the results in order while the workers run, and can stop them")
    func streaming() throws {
        let results = ParallelResults<Int>(count: 500)
        results.start(workers: 2, makeContext: {}) { _, index in index + 1 }
        var taken: [Int] = []
        for index in 0..<500 {
            guard let result = results.take(index) else { break }
            taken.append(try result.get())
        }
        results.wait()
        #expect(taken == Array(1...500))

        let stopped = ParallelResults<Int>(count: 100_000)
        stopped.start(workers: 2, makeContext: {}) { _, index in index }
        _ = stopped.take(3)
        stopped.stop()
        stopped.wait()
        #expect(stopped.done < 100_000)
        #expect(stopped.take(99_999) == nil || stopped.done == 100_000)
    }

    @Test("take returns nil once the batch has failed before the slot was filled")
    func takeAfterFailure() {
        let results = ParallelResults<Int>(count: 1_000)
        results.start(workers: 1, makeContext: {}) { _, index in
            if index == 2 { throw Boom(index: 2) }
            return index
        }
        #expect(results.take(0) != nil)
        #expect(results.take(999) == nil)
        results.wait()
        #expect(throws: Boom(index: 2)) { try results.values() }
    }
}
