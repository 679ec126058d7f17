import Foundation
import MisalignIO

/// Everything that defines a LoRA training run. The defaults are the study's reference protocol:
/// r 32, alpha 64, rsLoRA, all seven projections of every layer, lr 1e-5 with a linear schedule
/// and 5 warmup steps, AdamW (weight decay 0.01), batch 2 x accumulation 8, one epoch, a
/// checkpoint every 2 optimizer steps.
public struct TrainingSettings: Equatable, Sendable {
    public var lora = LoRAConfig(rank: 32, alpha: 64, useRSLoRA: true, targets: LoRAModule.allCases, layers: nil, dropout: 0)
    /// The LoRA settings given explicitly (a flag or a config-file key) rather than defaulted:
    /// with a starting adapter (`adopt`), the others take the adapter's values and these must agree.
    public var explicitLoRA: Set<LoRASetting> = []
    public var learningRate = 1e-5
    public var warmupSteps = 5
    public var schedule = LRSchedule.linear
    public var weightDecay = 0.01
    /// Global gradient-norm clipping; 0 turns it off.
    public var maxGradNorm = 1.0
    public var batchSize = 2
    public var gradientAccumulation = 8
    public var epochs = 1
    /// Stops after this many optimizer steps when set (may run past the epochs, as HF's max_steps).
    public var maxSteps: Int? = nil
    public var seed: UInt64 = 0
    public var saveEvery = 2
    public var maxLength = 1024
    /// Share of the examples held out of training (`HoldoutSplit`), 0 <= holdout < 1; their
    /// loss is evaluated at every checkpoint. 0: every example is trained on.
    public var holdout = 0.0
    /// The held-out loss is evaluated at every `holdoutEvery`-th checkpoint (and the last); 1: at
    /// every checkpoint. Not part of the resume fingerprint (it changes no weight).
    public var holdoutEvery = 1
    public var adapterDType = DType.f32
    /// The arithmetic of the frozen base products (`LoRATrainingModel.precision`): `.bf16`
    /// rounds their inputs and gradients to bf16 and runs them on the bf16 dot kernels, for
    /// bf16 base weights (f32 and f16 weights ignore it).
    public var precision = ComputePrecision.f32
    public var keepAllOptimizerStates = false
    /// Gradient checkpointing: recompute each layer's activations in the backward pass.
    public var recompute = false

    public init() {}

    /// Upper bounds past which a setting is a typo, not a choice: the one set of limits for the
    /// CLI, JSON config files and YAML experiments (`TrainingSettingKey.all` checks them).
    public enum Bounds {
        public static let learningRate = 10.0
        public static let steps = 10_000_000
        public static let epochs = 10_000
        public static let batchSize = 65_536
        public static let maxLength = 1 << 20
        public static let rank = 65_536
        public static let alpha = 1e6
        public static let weightDecay = 1e6
        public static let maxGradNorm = 1e12
        /// The largest layer index a list may name.
        public static let layer = 65_535
        public static let threads = 4_096
    }

    /// Checks the settings against the model they will train, before anything is written:
    /// each against its range (`validate()`), the rank at most the hidden size, and every listed layer exists.
    public func validate(model: Qwen2Config) throws {
        try validate()
        func bad(_ n: String, _ d: String) -> TrainingError { .invalidSetting(name: n, detail: d) }
        if lora.rank > model.hiddenSize {
            throw bad("rank", "is \(lora.rank); must be <= the model's hidden size \(model.hiddenSize)")
        }
        if let l = lora.layers, let n = l.first(where: { $0 >= model.numHiddenLayers }) {
            throw bad("layers", "lists layer \(n); the model has \(model.numHiddenLayers) layers (0-\(model.numHiddenLayers - 1))")
        }
    }

    /// "q_proj" or "q" -> .q; "all" is handled by callers.
    public static func module(_ s: String) throws -> LoRAModule {
        if let m = LoRAModule(rawValue: s) ?? LoRAModule(rawValue: s + "_proj") { return m }
        throw TrainingError.invalidSetting(name: "targets", detail: "unknown module \"\(s)\"; use \(LoRAModule.allCases.map(\.rawValue).joined(separator: ", "))")
    }

    public static func dtype(_ s: String) -> DType? {
        switch s.lowercased() { case "f32", "float32": return .f32; case "bf16", "bfloat16": return .bf16; default: return nil }
    }
}
