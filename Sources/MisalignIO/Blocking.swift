import Dispatch
import Foundation
import Synchronization

/// The one bridge from synchronous code (a command's `run()`, a benchmark driver, a trainer's
/// step callback) to async work: the calling thread waits while `body` runs on the cooperative
/// pool, and its error, typed as `body` throws it, is rethrown. Never call it from inside an
/// async context, which would block one of the pool's threads.
public func runBlocking<T: Sendable, E: Error>(_ body: @escaping @Sendable () async throws(E) -> T) throws(E) -> T {
    let box = BlockingResult<T, E>()
    let done = DispatchSemaphore(value: 0)
    Task {
        let result: Result<T, E>
        do throws(E) { result = .success(try await body()) } catch { result = .failure(error) }
        box.result.withLock { $0 = result }
        done.signal()
    }
    done.wait()
    return try box.result.withLock { $0 }!.get()
}

/// Written by the task before it signals, read by the waiting thread after.
private final class BlockingResult<T: Sendable, E: Error>: Sendable {
    let result = Mutex<Result<T, E>?>(nil)
}

/// The other direction: blocking work (a model's forward passes, training steps) awaited from
/// async code on a thread of its own, so seconds of CPU work never hold one of the cooperative
/// pool's few threads, which every other task (HTTP judges, progress) needs.
/// Its error, typed as `body` throws it, is rethrown.
public func runOffPool<T: Sendable, E: Error>(stackSize: Int = 16 << 20, _ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
    let result: Result<T, E> = await withCheckedContinuation { cont in
        let t = Thread {
            do throws(E) { cont.resume(returning: .success(try body())) } catch { cont.resume(returning: .failure(error)) }
        }
        t.stackSize = stackSize
        t.start()
    }
    return try result.get()
}

/// A serial lane off the cooperative pool: blocking work submitted to it runs one item at a
/// time, in order, on a dispatch queue of its own (whose threads are not the pool's), and is
/// awaited without holding a thread. For a resource that serves one caller at a time (a model
/// and its cache), so that many waiting callers cost no threads, where `runOffPool` would
/// start one thread per caller, each blocked until its turn.
public final class SerialLane: Sendable {
    private let queue: DispatchQueue

    public init(label: String) { queue = DispatchQueue(label: label) }

    /// Runs `body` after the work submitted before it; its error, typed as `body` throws it,
    /// is rethrown.
    public func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { cont in
            queue.async {
                do throws(E) { cont.resume(returning: .success(try body())) } catch { cont.resume(returning: .failure(error)) }
            }
        }
        return try result.get()
    }
}
