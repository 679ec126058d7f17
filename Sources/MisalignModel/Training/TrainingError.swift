import Foundation

/// Problems a training run can meet, each naming what is wrong and where, and what to do.
public enum TrainingError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A line of the chat JSONL data is unusable.
    case invalidExample(file: String, line: Int, reason: String)
    /// The data has no usable example (all skipped, empty file, or nothing left to learn after truncation).
    case noExamples(file: String, detail: String)
    /// A setting is out of range or inconsistent with the model.
    case invalidSetting(name: String, detail: String)
    /// The loss or the gradient stopped being finite; the last good checkpoint is kept.
    case nonFinite(step: Int, what: String, lastCheckpoint: Int?)
    /// A checkpoint folder is incomplete or does not match the run.
    case invalidCheckpoint(path: String, detail: String)
    /// Resuming from `checkpoint` with settings other than it was written with.
    case settingsChanged(checkpoint: String, changes: [SettingChange])
    /// Training blew up (loss back at the uniform-guess level, or exploding adapter weights):
    /// stopped at `step`, `lastCheckpoint` is the last good checkpoint kept.
    case diverged(step: Int, what: String, lastCheckpoint: Int?)

    public var description: String {
        switch self {
        case .invalidExample(let f, let l, let r):
            return "\(f):\(l): \(r); fix the line or set skipInvalid to skip such lines"
        case .noExamples(let f, let d): return "\(f): no usable training example (\(d))"
        case .invalidSetting(let n, let d): return "setting \(n): \(d)"
        case .nonFinite(let s, let w, let c):
            let kept = c.map { "checkpoint-\($0) is the last good one" } ?? "no checkpoint was written yet"
            return "step \(s): the \(w) is not finite (NaN or Inf); training stopped, \(kept). Lower the learning rate or check the data"
        case .invalidCheckpoint(let p, let d): return "\(p): \(d)"
        case .settingsChanged(let p, let changes):
            let list = changes.map(\.description).joined(separator: "; ")
            return "\(p) was written with other settings than this run's: \(list). A resumed run must keep its settings: "
                + "rerun with the checkpoint's values to continue it, or use another run folder to start a new run"
        case .diverged(let s, let w, let c):
            let kept = c.map { "checkpoint-\($0) is the last good one" } ?? "no good checkpoint was written"
            return "step \(s): training diverged: \(w). Training stopped, \(kept). Lower the learning rate (`lr`; "
                + "LoRA usually trains at 1e-5 to 1e-3, try a tenth of this run's) and start again in a new run folder"
        }
    }
}

extension TrainingError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
