import Foundation
import Synchronization

/// Time as the reliability layer sees it. Injected so tests can make every backoff instant
/// while still checking which delays were asked for.
public protocol JudgeClock: Sendable {
    /// Seconds since an arbitrary fixed point (monotonic).
    func now() -> Double
    /// Suspends for `seconds` (or returns early if the task is cancelled).
    func sleep(seconds: Double) async
}

/// The real clock.
public struct SystemJudgeClock: JudgeClock {
    public init() {}
    public func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
    public func sleep(seconds: Double) async {
        guard seconds > 0 else { return }
        try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
    }
}

/// A clock whose sleeps return at once but advance its time; records every requested sleep.
public final class RecordingJudgeClock: JudgeClock, Sendable {
    private let state = Mutex((t: 0.0, slept: [Double]()))
    public init() {}
    public func now() -> Double { state.withLock { $0.t } }
    public func sleep(seconds: Double) async {
        record(seconds)
        await Task.yield()
    }
    private func record(_ seconds: Double) { state.withLock { $0.slept.append(seconds); $0.t += max(0, seconds) } }
    /// Every sleep asked for so far, in order.
    public var sleeps: [Double] { state.withLock { $0.slept } }
}
