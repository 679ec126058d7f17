import Foundation
import MisalignIO
import MisalignModel
import MisalignTokenizer

/// Generation in this process: the base weights are loaded once, and each checkpoint only
/// swaps `Qwen2Model.adapter` (a few MB of LoRA matrices) instead of reloading the model.
/// The model is shared, so generators from this backend must be used one checkpoint at a time
/// (the pipeline does).
public final class LocalGenerationBackend: GenerationBackend, @unchecked Sendable {
    public let model: Qwen2Model
    public let tokenizer: BPETokenizer
    public var name: String { "local" }

    /// Loads the base model and tokenizer (the model folder's when `tokenizer` is nil). The
    /// weights go into huge pages where they fit (`FileResidency.auto`) unless `weights` says
    /// otherwise: generation streams them once per decoding step, for minutes.
    public init(model: URL, tokenizer: URL? = nil, weights: FileResidency = .auto) throws {
        self.model = try Qwen2Model(directory: model, residency: weights)
        self.tokenizer = try BPETokenizer(directory: tokenizer ?? model)
    }

    public init(model: Qwen2Model, tokenizer: BPETokenizer) {
        self.model = model; self.tokenizer = tokenizer
    }

    public func generator(for checkpoint: (any Checkpoint)?) async throws -> any Generator {
        try model.setAdapter(checkpoint.map { try $0.loadAdapter() })
        return LocalGenerator(model: model, tokenizer: tokenizer)
    }

    public func release(_ checkpoint: (any Checkpoint)?) async throws {
        try model.setAdapter(nil)
    }
}
