import Foundation
import Synchronization

/// Where the pipeline tells an observer that a unit of a stage is committed to the store
/// (train: an optimizer step; dynamics: an adapter checkpoint; generate: a question group; judge: a verdict; aggregate: a
/// checkpoint; detect: a run; probe: a monitor probe). Package-internal: the kill-and-resume
/// tests install an observer that `kill -9`s the process there (`MisalignTesting.CrashPoint`).
package enum StageHooks {
    private static let observer = Mutex<(@Sendable (String) -> Void)?>(nil)

    /// Installs (or, with nil, removes) the observer; do it once, before any stage runs.
    package static func observeUnits(_ body: (@Sendable (String) -> Void)?) {
        observer.withLock { $0 = body }
    }

    static func unitDone(_ stage: String) {
        observer.withLock { $0 }?(stage)
    }
}
