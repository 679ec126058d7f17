import Dispatch

/// Runs async judge work from synchronous code (a command-line `run()`, a benchmark driver):
/// the calling thread waits while the work runs on the cooperative pool. Never call it from
/// inside an async context, which would block one of the pool's threads.
public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws(JudgeError) -> T) throws(JudgeError) -> T {
    let box = BlockingResult<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do throws(JudgeError) { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

private final class BlockingResult<T>: @unchecked Sendable {
    var result: Result<T, JudgeError>?
}
