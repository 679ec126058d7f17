import Foundation
import MisalignTokenizer

/// A training run as the CLI describes it: files in, a run directory out. Loads the model,
/// tokenizer and data, then hands back a ready `LoRATrainer` (resuming when the run directory
/// has a resumable checkpoint).
public struct TrainingJob: Sendable {
    public var model: URL
    public var data: URL
    public var out: URL
    /// Defaults to `model`.
    public var tokenizer: URL?
    public var settings: TrainingSettings
    public var initAdapter: URL?
    public var skipInvalid: Bool

    public init(model: URL, data: URL, out: URL, tokenizer: URL? = nil, settings: TrainingSettings = TrainingSettings(),
                initAdapter: URL? = nil, skipInvalid: Bool = false) {
        self.model = model; self.data = data; self.out = out; self.tokenizer = tokenizer
        self.settings = settings; self.initAdapter = initAdapter; self.skipInvalid = skipInvalid
    }

    /// Loads everything; `log` receives one-line notes (data counts, resume point).
    public func makeTrainer(log: (String) -> Void = { _ in }) throws -> LoRATrainer {
        var settings = self.settings
        try settings.validate()
        let weights = try Qwen2Weights(directory: model)
        // The starting adapter's own configuration rules the LoRA settings not given explicitly.
        let adapter = try initAdapter.map { try LoRAAdapter(directory: $0) }
        if let adapter { try settings.adopt(adapter, layerCount: weights.config.numHiddenLayers) }
        try settings.validate(model: weights.config)
        let tok = try BPETokenizer(directory: tokenizer ?? model)
        let dataset = try ChatDataset(url: data, tokenizer: tok, maxLength: settings.maxLength, skipInvalid: skipInvalid)
        let tokens = dataset.examples.reduce(0) { $0 + $1.ids.count }
        let targets = dataset.examples.reduce(0) { $0 + $1.mask.dropFirst().filter { $0 }.count }
        log("data: \(dataset.examples.count) conversations, \(tokens) tokens (\(targets) trained on)"
            + (dataset.skipped.isEmpty ? "" : ", \(dataset.skipped.count) invalid lines skipped (first: line \(dataset.skipped[0].line): \(dataset.skipped[0].reason))"))
        let trainer = try LoRATrainer(weights: weights, examples: dataset.examples, settings: settings, run: out,
                                      initAdapter: adapter, baseModel: model.path)
        if !trainer.heldOut.isEmpty {
            log("holdout \(TrainingSettings.number(settings.holdout)): \(trainer.heldOut.count) conversations held out (seed \(settings.seed)), "
                + "\(trainer.examples.count) trained on; the held-out loss is evaluated at every checkpoint")
        }
        if trainer.step > 0 { log("resuming from \(trainer.lastCheckpoint!.directory.path) at step \(trainer.step) of \(trainer.totalSteps)") }
        if let note = trainer.resumeNote { log("note: \(note)") }
        if let adapter {
            let c = settings.lora
            log("starting from \(adapter.path ?? "the given adapter"): r \(c.rank), alpha \(TrainingSettings.number(c.alpha)), rsLoRA \(c.useRSLoRA ? "on" : "off"), dropout \(TrainingSettings.number(c.dropout))")
        }
        log("model: \(weights.config.numHiddenLayers) layers, hidden \(weights.config.hiddenSize); LoRA: \(trainer.parameters.keys.count) modules, "
            + "\(trainer.parameters.count) parameters, scale \(settings.lora.scale); \(trainer.totalSteps) steps, "
            + "activations \(trainer.model.plannedBytes / 1_048_576) MiB")
        return trainer
    }
}
