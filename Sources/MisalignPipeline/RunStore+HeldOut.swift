import Foundation
import MisalignModel

/// The held-out loss of each checkpoint (`training.holdout`), as the trainer recorded it in the
/// checkpoint's `trainer_state.json`: registered with the checkpoint, so a run resumed after a
/// crash has the loss of every checkpoint on disk.
extension RunStore {
    static let heldOutSchema = """
        CREATE TABLE IF NOT EXISTS heldout_loss (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            loss REAL NOT NULL, tokens INTEGER NOT NULL, PRIMARY KEY (dataset, seed, step));
        """

    func addHeldOutLoss(_ r: RunID, step: Int, _ h: HeldOutLoss) throws(PipelineError) {
        try db.run("INSERT OR REPLACE INTO heldout_loss (dataset, seed, step, loss, tokens) VALUES (?1, ?2, ?3, ?4, ?5)",
                   [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(step)), .double(h.loss), .int(Int64(h.tokens))])
    }

    /// The run's held-out losses by step (empty without `training.holdout`).
    public func heldOutLosses(_ r: RunID) throws(PipelineError) -> [(step: Int, loss: HeldOutLoss)] {
        try db.query("SELECT step, loss, tokens FROM heldout_loss WHERE dataset = ?1 AND seed = ?2 ORDER BY step",
                     [.text(r.dataset), .int(Int64(r.seed))]).map { ($0[0].int ?? 0, HeldOutLoss(loss: $0[1].double ?? .nan, tokens: $0[2].int ?? 0)) }
    }

    /// Records the held-out loss a checkpoint folder's `trainer_state.json` holds, if any.
    func addHeldOutLoss(_ r: RunID, checkpoint: URL, step: Int) throws(PipelineError) {
        let file = checkpoint.appendingPathComponent(CheckpointStore.stateFile)
        guard let data = try? Data(contentsOf: file),
              let state = try? CheckpointStore.decode(data, file: checkpoint.path), let h = state.heldOutLoss else { return }
        try addHeldOutLoss(r, step: step, h)
    }
}
