import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import MisalignPipeline
import MisalignCore

/// The kill-and-resume tests' hook: with `MISALIGN_TEST_KILL_AT=STAGE:N` in the environment,
/// `installFromEnvironment()` makes the process SIGKILL itself right after the pipeline commits
/// its N-th unit of STAGE (train: optimizer steps; dynamics: adapter checkpoints; generate: question groups; judge: verdicts;
/// aggregate: checkpoints; detect: runs; probe: monitor probes). Nothing is cleaned up, exactly
/// as with `kill -9`. The CLI installs it at start; the library never does.
public enum CrashPoint {
    public static func installFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let v = environment["MISALIGN_TEST_KILL_AT"] else { return }
        let parts = v.split(separator: ":")
        guard parts.count == 2, let n = Int(parts[1]) else { return }
        let target = String(parts[0])
        let counter = Counter()
        StageHooks.observeUnits { stage in
            guard stage == target, counter.increment() == n else { return }
            kill(getpid(), SIGKILL)
        }
    }

    private final class Counter: Sendable {
        private let n = Mutex(0)
        func increment() -> Int { n.withLock { $0 += 1; return $0 } }
    }
}
