import Foundation
import Synchronization
import MisalignGeneration
import MisalignIO
import MisalignModel
import MisalignTokenizer

extension EarlyWarningMonitor {
    /// Probes with the in-process model: one `Qwen2Model` over the trainer's mapped base
    /// weights (no second copy), whose adapter is set from the trainer's current LoRA
    /// parameters at each probe. The step's checkpoint need not be on disk yet (the trainer
    /// writes it after the step callback returns).
    public static func localProbe(trainer: LoRATrainer, tokenizer: any Tokenizer) -> ProbeGeneratorSource {
        let model = Qwen2Model(weights: trainer.model.weights)
        let parameters = UncheckedSendable(trainer.parameters)
        return { _ in
            try model.setAdapter(parameters.value.adapter())
            return LocalGenerator(model: model, tokenizer: tokenizer)
        }
    }

    /// Probes through a `GenerationBackend` (a vLLM server, or an embedding program's own): the
    /// step's checkpoint is written first (`trainer.checkpointNow()`; `LoRATrainer` overwrites
    /// it if the step is also a save step) so the backend can load it; the previous probe's
    /// adapter is released.
    public static func backendProbe(_ backend: any GenerationBackend, trainer: any Trainer) -> ProbeGeneratorSource {
        let trainer = UncheckedSendable(trainer)
        let last = LastCheckpoint()
        return { step in
            // Writing the checkpoint is blocking file work: off the cooperative pool.
            guard let ck = try await runOffPool({ try trainer.value.checkpointNow() }) else {
                throw EarlyWarningError.probeFailed(step: step, reason: "the trainer cannot write a checkpoint now for the generation backend to load (Trainer.checkpointNow)")
            }
            if let previous = last.swap(ck), previous.step != ck.step { try await backend.release(previous) }
            return try await backend.generator(for: ck)
        }
    }
}

/// Hands a non-Sendable reference to a probe closure.
// Unchecked Sendable: the trainer calls its step callback on its own thread and waits there
// for the probe to finish, so the wrapped object is used by one thread at a time: the trainer's,
// or the probe's while the trainer's waits.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

private final class LastCheckpoint: Sendable {
    private let value = Mutex<(any Checkpoint)?>(nil)
    func swap(_ new: any Checkpoint) -> (any Checkpoint)? { value.withLock { value in defer { value = new }; return value } }
}
