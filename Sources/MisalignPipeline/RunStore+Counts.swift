import Foundation
import MisalignIO

/// Row counts that `misalign status`, the early-warning record and the analysis stages ask for.
extension RunStore {
    private func key(_ r: RunID) -> [SQLValue] { [.text(r.dataset), .int(Int64(r.seed))] }

    /// Answers stored at (run, step).
    public func answerCount(_ r: RunID, step: Int) throws(PipelineError) -> Int {
        try db.scalar("SELECT COUNT(*) FROM generations WHERE dataset = ?1 AND seed = ?2 AND step = ?3", key(r) + [.int(Int64(step))])
    }

    /// Verdicts of `judge` stored at (run, step), every trait.
    public func verdictCount(_ r: RunID, step: Int, judge: String) throws(PipelineError) -> Int {
        try db.scalar("SELECT COUNT(*) FROM judgments WHERE dataset = ?1 AND seed = ?2 AND step = ?3 AND judge = ?4",
                      key(r) + [.int(Int64(step)), .text(judge)])
    }

    /// Verdicts of `judge` stored over the whole store.
    public func verdictCount(judge: String) throws(PipelineError) -> Int {
        try db.scalar("SELECT COUNT(*) FROM judgments WHERE judge = ?1", [.text(judge)])
    }

    /// Optimizer steps logged for run `r`.
    public func metricCount(_ r: RunID) throws(PipelineError) -> Int {
        try db.scalar("SELECT COUNT(*) FROM metrics WHERE dataset = ?1 AND seed = ?2", key(r))
    }

    /// Units of `stage` finished (e.g. `aggregate`, `detect`).
    public func unitCount(stage: String) throws(PipelineError) -> Int {
        try db.scalar("SELECT COUNT(*) FROM units WHERE stage = ?1", [.text(stage)])
    }

    /// Probe rounds stored for run `r` (rows of its first signal).
    public func probeCount(_ r: RunID) throws(PipelineError) -> Int {
        try db.scalar("SELECT COUNT(*) FROM probes WHERE dataset = ?1 AND seed = ?2 AND signal_index = 0", key(r))
    }
}
