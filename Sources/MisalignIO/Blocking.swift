import Dispatch
import Foundation

/// The one bridge from synchronous code (a command's `run()`, a benchmark driver, a trainer's
/// step callback) to async work: the calling thread waits while `body` runs on the cooperative
/// pool, and its error, typed as `body` throws it, is rethrown. Never call it from inside an
/// async context, which would block one of the pool's threads.
public func runBlocking<T: Sendable, E: Error>(_ body: @escaping @Sendable () async throws(E) -> T) throws(E) -> T {
    let box = BlockingResult<T, E>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do throws(E) { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// Written by the task before it signals, read by the waiting thread after: the semaphore
/// orders the two, which the compiler cannot see.
private final class BlockingResult<T, E: Error>: @unchecked Sendable {
    var result: Result<T, E>?
}

/// The other direction: blocking work (a model's forward passes, training steps) awaited from
/// async code on a thread of its own, so seconds of CPU work never hold one of the cooperative
/// pool's few threads, which every other task (HTTP judges, progress) needs.
public func runOffPool<T: Sendable>(stackSize: Int = 16 << 20, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { cont in
        let t = Thread { cont.resume(with: Result { try body() }) }
        t.stackSize = stackSize
        t.start()
    }
}
