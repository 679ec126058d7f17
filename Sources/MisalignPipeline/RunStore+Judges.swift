import Foundation
import MisalignIO

/// One stored answer with the planned length of its run (the demo judge's notion of progress).
public struct StoredAnswer: Sendable, Equatable {
    public var generation: StoredGeneration
    /// The run's planned optimizer steps (`runs.total_steps`).
    public var totalSteps: Int
}

/// Writes and reads about judges and their answers that the pipeline's judge bookkeeping
/// (`PipelineRunner.reconcileJudges`) and the demo judge (`PlantedScheduleJudge`) need.
extension RunStore {
    /// Moves every verdict stored under judge name `old` to `new` (a respelled judge's
    /// canonical name). Call inside a transaction.
    func renameJudge(from old: String, to new: String) throws(PipelineError) {
        try db.run("UPDATE judgments SET judge = ?1 WHERE judge = ?2", [.text(new), .text(old)])
    }

    /// Every stored answer with its run's planned length, latest step first.
    public func answersWithRunLength() throws(PipelineError) -> [StoredAnswer] {
        try db.query("""
            SELECT g.dataset, g.seed, g.step, g.question_id, g.sample, g.text, r.total_steps FROM generations g
            JOIN runs r USING (dataset, seed) ORDER BY g.step DESC
            """).map {
            StoredAnswer(generation: StoredGeneration(run: RunID(dataset: $0[0].text ?? "", seed: $0[1].int ?? 0), step: $0[2].int ?? 0,
                                                      questionID: $0[3].text ?? "", sample: $0[4].int ?? 0, text: $0[5].text ?? ""),
                         totalSteps: $0[6].int ?? 1)
        }
    }
}
