import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A test hook for the kill-and-resume tests: with `MISALIGN_TEST_KILL_AT=STAGE:N` in the
/// environment, the process SIGKILLs itself right after committing its N-th unit of STAGE
/// (train: optimizer steps; generate: question groups; judge: verdicts; aggregate: checkpoints;
/// detect: runs). Nothing is cleaned up, exactly as with `kill -9`.
enum CrashPoint {
    nonisolated(unsafe) private static var counts: [String: Int] = [:]
    private static let lock = NSLock()
    private static let target: (stage: String, n: Int)? = {
        guard let v = ProcessInfo.processInfo.environment["MISALIGN_TEST_KILL_AT"] else { return nil }
        let parts = v.split(separator: ":")
        guard parts.count == 2, let n = Int(parts[1]) else { return nil }
        return (String(parts[0]), n)
    }()

    static func unitDone(_ stage: String) {
        guard let target, target.stage == stage else { return }
        lock.lock()
        counts[stage, default: 0] += 1
        let hit = counts[stage] == target.n
        lock.unlock()
        if hit { kill(getpid(), SIGKILL) }
    }
}
