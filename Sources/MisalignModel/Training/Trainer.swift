import Foundation
import MisalignIO

/// What one optimizer step did, as logged to `metrics.jsonl` and passed to step callbacks.
public struct StepMetrics: Sendable, Equatable {
    /// Optimizer steps done, this one included (1-based).
    public var step: Int
    public var totalSteps: Int
    public var epoch: Int
    /// Mean cross-entropy over the step's target tokens, before the update.
    public var loss: Double
    /// Learning rate this step's update used.
    public var lr: Double
    /// Global gradient L2 norm before clipping.
    public var gradNorm: Double
    /// Tokens run through the model (all rows of all micro-batches) and target tokens among them.
    public var tokens: Int
    public var targetTokens: Int
    public var seconds: Double
    public var tokensPerSecond: Double { seconds > 0 ? Double(tokens) / seconds : 0 }
    /// Checkpoint written after this step, if any.
    public var checkpoint: String?
    /// Loss of the held-out examples after this step's update, at steps that write a checkpoint
    /// (nil elsewhere and without `holdout`).
    public var heldOutLoss: Double? = nil

    public init(step: Int, totalSteps: Int, epoch: Int, loss: Double, lr: Double, gradNorm: Double, tokens: Int, targetTokens: Int, seconds: Double, checkpoint: String? = nil, heldOutLoss: Double? = nil) {
        self.step = step
        self.totalSteps = totalSteps
        self.epoch = epoch
        self.loss = loss
        self.lr = lr
        self.gradNorm = gradNorm
        self.tokens = tokens
        self.targetTokens = targetTokens
        self.seconds = seconds
        self.checkpoint = checkpoint
        self.heldOutLoss = heldOutLoss
    }

    /// One `metrics.jsonl` line (without the newline).
    public var jsonLine: String {
        var pairs: [(String, JSONValue)] = [
            ("step", .int(Int64(step))), ("epoch", .int(Int64(epoch))), ("loss", .double(loss)), ("lr", .double(lr)),
            ("grad_norm", .double(gradNorm)), ("tokens", .int(Int64(tokens))), ("target_tokens", .int(Int64(targetTokens))),
            ("seconds", .double(seconds)), ("tokens_per_second", .double(tokensPerSecond)),
        ]
        if let heldOutLoss { pairs.append(("heldout_loss", .double(heldOutLoss))) }
        return JSONValue.object(JSONObject(pairs)).serialized()
    }
}

/// A callback's answer after each step: carry on, or stop (after a checkpoint of this step).
public enum TrainerControl: Sendable { case proceed, stop }

/// How a run ended.
public struct TrainingOutcome: Sendable {
    public var steps: Int
    public var stoppedEarly: Bool
    public var lastCheckpoint: CheckpointDirectory?

    public init(steps: Int, stoppedEarly: Bool, lastCheckpoint: CheckpointDirectory? = nil) {
        self.steps = steps; self.stoppedEarly = stoppedEarly; self.lastCheckpoint = lastCheckpoint
    }
}

/// A trainer runs optimizer steps and reports each to a callback that may stop it (the
/// early-warning monitor uses that). Errors (NaN loss, I/O) end the run with the last good
/// checkpoint kept.
///
/// `LoRATrainer` is Misalign's own; a pipeline takes any conformer through its
/// `TrainerFactory` (Docs/Embedding.md), for example one that follows checkpoints written by a
/// GPU job elsewhere. The pipeline reads `latestCheckpoint` after each step's callback and
/// registers each new checkpoint for generation, so a checkpoint may appear at any step.
public protocol Trainer: AnyObject {
    /// Optimizer steps done so far (the step a resumed run starts after).
    var step: Int { get }
    var totalSteps: Int { get }
    /// The newest checkpoint written, nil before the first.
    var latestCheckpoint: (any Checkpoint)? { get }
    /// Runs the remaining steps, calling `onStep` after each; `.stop` ends the run after a
    /// checkpoint of that step.
    func train(onStep: (StepMetrics) throws -> TrainerControl) throws -> TrainingOutcome
    /// Writes a checkpoint of the current state now, for an early-warning probe that a
    /// generation backend serves; nil when this trainer cannot (the default).
    func checkpointNow() throws -> (any Checkpoint)?
}

extension Trainer {
    public func checkpointNow() throws -> (any Checkpoint)? { nil }
}
