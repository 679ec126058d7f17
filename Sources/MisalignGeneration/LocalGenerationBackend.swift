import Foundation
import Synchronization
import MisalignIO
import MisalignModel
import MisalignTokenizer

/// Generation in this process: the base weights are loaded once, and each LoRA checkpoint only
/// swaps `Qwen2Model.adapter` (a few MB of LoRA matrices) instead of reloading the model. A
/// checkpoint holding a whole model (`CheckpointWeights.model`) is loaded beside the base, with
/// the base model's `computePrecision` and this backend's weight residency, and kept until
/// `release` or the next checkpoint. The model is shared, so generators from this backend must
/// be used one checkpoint at a time (the pipeline does).
public final class LocalGenerationBackend: GenerationBackend, Sendable {
    public let model: Qwen2Model
    public let tokenizer: BPETokenizer
    /// How the weights of whole-model checkpoints are held (the base model's, when this
    /// backend loaded it).
    public let residency: FileResidency
    public var name: String { "local" }
    /// The whole-model checkpoint loaded last, by folder.
    private let loaded = Mutex<(directory: URL, model: Qwen2Model)?>(nil)

    /// Loads the base model and tokenizer (the model folder's when `tokenizer` is nil). The
    /// weights go into huge pages where they fit (`FileResidency.auto`) unless `weights` says
    /// otherwise: generation streams them once per decoding step, for minutes.
    public init(model: URL, tokenizer: URL? = nil, weights: FileResidency = .auto) throws {
        self.model = try Qwen2Model(directory: model, residency: weights)
        self.tokenizer = try BPETokenizer(directory: tokenizer ?? model)
        residency = weights
    }

    /// A backend over a model already loaded; whole-model checkpoints are loaded with `weights`.
    public init(model: Qwen2Model, tokenizer: BPETokenizer, weights: FileResidency = .mapped) {
        self.model = model; self.tokenizer = tokenizer; residency = weights
    }

    public func generator(for checkpoint: (any Checkpoint)?) async throws -> any Generator {
        guard let checkpoint else {
            try model.setAdapter(nil)
            return LocalGenerator(model: model, tokenizer: tokenizer)
        }
        switch try checkpoint.weights() {
        case .lora(let adapter):
            try model.setAdapter(adapter)
            return LocalGenerator(model: model, tokenizer: tokenizer)
        case .model(let directory):
            try model.setAdapter(nil)
            return LocalGenerator(model: try wholeModel(directory), tokenizer: tokenizer)
        }
    }

    public func release(_ checkpoint: (any Checkpoint)?) async throws {
        try model.setAdapter(nil)
        loaded.withLock { $0 = nil }
    }

    /// The model in `directory`, loaded like the base; its vocabulary must be the base's (the
    /// prompts are the base tokenizer's ids).
    func wholeModel(_ directory: URL) throws -> Qwen2Model {
        if let m = loaded.withLock({ $0?.directory == directory ? $0?.model : nil }) { return m }
        loaded.withLock { $0 = nil }  // the previous one's memory goes before the next loads
        let m: Qwen2Model
        do { m = try Qwen2Model(directory: directory, residency: residency) } catch {
            throw TrainingError.invalidCheckpoint(path: directory.path, detail: "cannot load the model it holds: \(error)")
        }
        guard m.config.vocabSize == model.config.vocabSize else {
            throw TrainingError.invalidCheckpoint(path: directory.path, detail: "the model has a vocabulary of \(m.config.vocabSize) tokens, the base model \(model.config.vocabSize); a checkpoint is generated from with the base tokenizer, so the vocabularies must match")
        }
        m.computePrecision = model.computePrecision
        loaded.withLock { $0 = (directory, m) }
        return m
    }
}
