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
    public var keepAllOptimizerStates = false
    /// Gradient checkpointing: recompute each layer's activations in the backward pass.
    public var recompute = false

    public init() {}

    public func validate() throws {
        func bad(_ n: String, _ d: String) -> TrainingError { .invalidSetting(name: n, detail: d) }
        let b = Self.Bounds.self
        if !(learningRate >= 0 && learningRate.isFinite) { throw bad("lr", "must be a non-negative number") }
        if learningRate > b.learningRate { throw bad("lr", "is \(learningRate); above \(b.learningRate) training only diverges (LoRA uses 1e-5 to 1e-3)") }
        if warmupSteps > b.steps { throw bad("warmup-steps", "must be <= \(b.steps)") }
        if epochs > b.epochs { throw bad("epochs", "must be <= \(b.epochs)") }
        if let m = maxSteps, m > b.steps { throw bad("max-steps", "is \(m); must be <= \(b.steps)") }
        if batchSize > b.batchSize { throw bad("batch-size", "must be <= \(b.batchSize)") }
        if gradientAccumulation > b.batchSize { throw bad("grad-accum", "must be <= \(b.batchSize)") }
        if maxLength > b.maxLength { throw bad("max-length", "must be <= \(b.maxLength)") }
        if lora.rank > b.rank { throw bad("rank", "is \(lora.rank); must be <= \(b.rank)") }
        if !lora.alpha.isFinite || lora.alpha > b.alpha { throw bad("alpha", "must be a finite number <= \(b.alpha)") }
        if lora.targets.isEmpty { throw bad("targets", "names no module; use all or a list such as q_proj,v_proj") }
        if let l = lora.layers, l.isEmpty { throw bad("layers", "is empty; use all or a list of layer indices") }
        if let l = lora.layers, let n = l.first(where: { $0 < 0 }) { throw bad("layers", "lists \(n); layer indices are >= 0") }
        if warmupSteps < 0 { throw bad("warmup-steps", "must be >= 0") }
        if weightDecay < 0 { throw bad("weight-decay", "must be >= 0") }
        if maxGradNorm < 0 { throw bad("max-grad-norm", "must be >= 0 (0 turns clipping off)") }
        if batchSize < 1 { throw bad("batch-size", "must be >= 1") }
        if gradientAccumulation < 1 { throw bad("grad-accum", "must be >= 1") }
        if epochs < 1 { throw bad("epochs", "must be >= 1") }
        if let m = maxSteps, m < 1 { throw bad("max-steps", "must be >= 1") }
        if saveEvery < 0 { throw bad("save-every", "must be >= 0 (0 saves only at the end)") }
        if maxLength < 2 { throw bad("max-length", "must be >= 2") }
        if lora.rank < 1 { throw bad("rank", "must be >= 1") }
        if !(lora.alpha > 0) { throw bad("alpha", "must be > 0") }
        if !(lora.dropout >= 0 && lora.dropout < 1) { throw bad("dropout", "must be in [0, 1)") }
        try HoldoutSplit.check(holdout)
        if holdoutEvery < 1 { throw bad("holdout-every", "must be >= 1 (1: every checkpoint)") }
        if holdoutEvery > b.steps { throw bad("holdout-every", "must be <= \(b.steps)") }
        if adapterDType != .f32 && adapterDType != .bf16 { throw bad("adapter-dtype", "must be f32 or bf16") }
    }

    /// Upper bounds past which a setting is a typo, not a choice: the one set of limits for the
    /// CLI, JSON config files and YAML experiments.
    public enum Bounds {
        public static let learningRate = 10.0
        public static let steps = 10_000_000
        public static let epochs = 10_000
        public static let batchSize = 65_536
        public static let maxLength = 1 << 20
        public static let rank = 65_536
        public static let alpha = 1e6
    }

    /// Checks the settings against the model they will train, before anything is written:
    /// the rank is at most the hidden size, and every listed layer exists.
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

    /// Reads a JSON config file; its keys are the CLI flag names (`lr`, `warmup-steps`, ...,
    /// underscores accepted for dashes). Keys it does not set keep their current value.
    public mutating func apply(configFile url: URL) throws {
        let file = url.path
        let root: JSONValue
        do { root = try JSONValue.parse(Data(contentsOf: url)) } catch let e as JSONParseError {
            throw TrainingError.invalidSetting(name: "config", detail: "\(file): \(e.description)")
        } catch { throw FileError.cannotOpen(path: file, reason: error.localizedDescription) }
        guard let obj = root.objectValue else { throw TrainingError.invalidSetting(name: "config", detail: "\(file) is not a JSON object") }
        for (rawKey, v) in obj.pairs {
            let key = rawKey.replacingOccurrences(of: "_", with: "-")
            func bad(_ what: String) -> TrainingError { .invalidSetting(name: key, detail: "\(file): expected \(what), found \(v.serialized())") }
            func int() throws -> Int { guard let i = v.intValue else { throw bad("an integer") }; return i }
            func double() throws -> Double { guard let d = v.doubleValue else { throw bad("a number") }; return d }
            switch key {
            case "lr", "learning-rate": learningRate = try double()
            case "warmup-steps": warmupSteps = try int()
            case "schedule":
                guard let s = v.stringValue, let sch = LRSchedule(rawValue: s) else { throw bad("linear, constant or cosine") }
                schedule = sch
            case "weight-decay": weightDecay = try double()
            case "max-grad-norm": maxGradNorm = try double()
            case "batch-size": batchSize = try int()
            case "grad-accum", "gradient-accumulation": gradientAccumulation = try int()
            case "epochs": epochs = try int()
            case "max-steps": maxSteps = v.isNull ? nil : try int()
            case "rank", "r": lora.rank = try int(); explicitLoRA.insert(.rank)
            case "alpha", "lora-alpha": lora.alpha = try double(); explicitLoRA.insert(.alpha)
            case "rslora", "use-rslora": guard let b = v.boolValue else { throw bad("true or false") }; lora.useRSLoRA = b; explicitLoRA.insert(.rslora)
            case "dropout", "lora-dropout": lora.dropout = try double(); explicitLoRA.insert(.dropout)
            case "targets", "target-modules":
                guard let list = v.arrayValue else { throw bad("a list of module names") }
                lora.targets = try list.map { guard let s = $0.stringValue else { throw bad("module names") }; return try Self.module(s) }
                explicitLoRA.insert(.targets)
            case "layers":
                if v.isNull { lora.layers = nil } else {
                    guard let list = v.arrayValue else { throw bad("a list of layer indices or null") }
                    lora.layers = try list.map { guard let i = $0.intValue else { throw bad("integers") }; return i }
                }
                explicitLoRA.insert(.layers)
            case "seed": guard let i = v.intValue, i >= 0 else { throw bad("a non-negative integer") }; seed = UInt64(i)
            case "save-every": saveEvery = try int()
            case "max-length": maxLength = try int()
            case "holdout": holdout = try double()
            case "holdout-every": holdoutEvery = try int()
            case "adapter-dtype":
                guard let s = v.stringValue, let d = Self.dtype(s) else { throw bad("\"f32\" or \"bf16\"") }
                adapterDType = d
            case "keep-optimizer-states": guard let b = v.boolValue else { throw bad("true or false") }; keepAllOptimizerStates = b
            case "gradient-checkpointing", "recompute": guard let b = v.boolValue else { throw bad("true or false") }; recompute = b
            default: throw TrainingError.invalidSetting(name: key, detail: "\(file): unknown setting")
            }
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
