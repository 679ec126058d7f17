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

    public var description: String {
        switch self {
        case .invalidExample(let f, let l, let r):
            return "\(f):\(l): \(r); fix the line or pass --skip-invalid to skip such lines"
        case .noExamples(let f, let d): return "\(f): no usable training example (\(d))"
        case .invalidSetting(let n, let d): return "setting \(n): \(d)"
        case .nonFinite(let s, let w, let c):
            let kept = c.map { "checkpoint-\($0) is the last good one" } ?? "no checkpoint was written yet"
            return "step \(s): the \(w) is not finite (NaN or Inf); training stopped, \(kept). Lower the learning rate or check the data"
        case .invalidCheckpoint(let p, let d): return "\(p): \(d)"
        }
    }
}
