import Foundation

/// Verdicts waiting for the local judge's model: `judge` calls queue here and a batch runs
/// whatever has gathered, up to `verdictBatch` verdicts, while the next ones gather.
struct VerdictQueue {
    typealias Waiter = (item: JudgeItem, reply: CheckedContinuation<Result<Verdict, JudgeError>, Never>)
    var waiting: [Waiter] = []
    /// A drain is scheduled or running on the judge's worker queue.
    var draining = false
    /// Batches run so far.
    var batches = 0
}

extension LocalJudge {
    /// Runs the forward passes off the cooperative pool, on the judge's own queue: seconds of
    /// CPU work on the pool would starve every other task (HTTP judges, progress) of its
    /// threads, and callers waiting for their turn hold no thread. Callers arriving while a
    /// batch runs are scored together in the next one.
    public func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict {
        let result: Result<Verdict, JudgeError> = await withCheckedContinuation { reply in
            let start = waiting.withLock { q -> Bool in
                q.waiting.append((item, reply))
                if q.draining { return false }
                q.draining = true
                return true
            }
            if start { worker.async { self.drain() } }
        }
        return try result.get()
    }

    /// Scores batches until no verdict is waiting.
    private func drain() {
        while true {
            let batch = waiting.withLock { q -> [VerdictQueue.Waiter] in
                let b = Array(q.waiting.prefix(verdictBatch))
                q.waiting.removeFirst(b.count)
                if b.isEmpty { q.draining = false } else { q.batches += 1 }
                return b
            }
            if batch.isEmpty { return }
            for (w, r) in zip(batch, judgeSync(batch.map(\.item))) { w.reply.resume(returning: r) }
        }
    }
}
