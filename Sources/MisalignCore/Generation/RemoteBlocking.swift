import Dispatch

/// Runs async work from synchronous code (a command's `run()`, a trainer's step callback): the
/// calling thread waits while the work runs on the cooperative pool; any error is rethrown.
/// Never call it from inside an async context, which would block one of the pool's threads.
public func waitForAsync<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = WaitBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

private final class WaitBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
