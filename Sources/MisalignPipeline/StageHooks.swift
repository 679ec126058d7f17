import Foundation

/// Where the pipeline tells an observer that a unit of a stage is committed to the store
/// (train: an optimizer step; generate: a question group; judge: a verdict; aggregate: a
/// checkpoint; detect: a run; probe: a monitor probe). Package-internal: the kill-and-resume
/// tests install an observer that `kill -9`s the process there (`MisalignTesting.CrashPoint`).
package enum StageHooks {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var observer: (@Sendable (String) -> Void)?

    /// Installs (or, with nil, removes) the observer; do it once, before any stage runs.
    package static func observeUnits(_ body: (@Sendable (String) -> Void)?) {
        lock.lock(); observer = body; lock.unlock()
    }

    static func unitDone(_ stage: String) {
        lock.lock(); let o = observer; lock.unlock()
        o?(stage)
    }
}
