import Foundation
import MisalignModel

/// Where a pipeline's answers come from: the in-process model, or a server that serves LoRA
/// adapters (vLLM with LoRA enabled). The pipeline asks for one generator per checkpoint;
/// `checkpoint == nil` means the base model (step 0, before training).
///
/// A backend decides how to make the checkpoint's adapter live: the local backend swaps
/// `Qwen2Model.adapter` without reloading the base weights; a remote backend loads the adapter
/// into the server under a name derived from the checkpoint and routes requests to that name.
public protocol GenerationBackend: Sendable {
    /// A short description for logs and `misalign status` ("local", "vllm http://host:8000").
    var name: String { get }
    /// A generator bound to `checkpoint`'s adapter (or the base model when nil).
    func generator(for checkpoint: (any Checkpoint)?) async throws -> any Generator
    /// Frees what `generator(for:)` set up for `checkpoint` (unloads a served adapter). Optional.
    func release(_ checkpoint: (any Checkpoint)?) async throws
}

extension GenerationBackend {
    public func release(_ checkpoint: (any Checkpoint)?) async throws {}
}
