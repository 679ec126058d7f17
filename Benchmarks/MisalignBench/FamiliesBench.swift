import Foundation
import MisalignCore

/// `misalign-bench families`: what each family's differences cost on one engine. The same
/// Qwen2.5-0.5B shape (or `--layers N` of it) written as Qwen2, Llama and Gemma 2 (random bf16
/// weights, `SyntheticModel.reshaped`), then per family: prefill of `--prompt` tokens, greedy
/// decoding of `--steps` tokens, and one LoRA training step (forward and backward, rank 16 on
/// every projection, one sequence of `--prompt` tokens), each the best of 3 after a warm-up. The
/// ratio column is the time over Qwen2's in the same run: Llama drops the q/k/v biases; Gemma 2
/// adds two norms per layer, GeGLU (tanh) instead of SwiGLU, soft-capped scores and logits and
/// a sliding window (4096, longer than these prompts: the mask costs nothing here).
func runFamiliesBenchmark(_ args: [String]) throws {
    let prompt = option(args, "--prompt").flatMap(Int.init) ?? 128
    let steps = option(args, "--steps").flatMap(Int.init) ?? 16
    var shape = SyntheticModel.qwen25_0_5B
    if let l = option(args, "--layers").flatMap(Int.init) { shape.numHiddenLayers = l }
    let base = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("misalign-bench-families-\(shape.numHiddenLayers)")
    print("load average before: \(loadAverage()); \(BLAS.threads) threads")
    var rng = SplitMix64(seed: 3)
    let ids = (0..<prompt).map { _ in Int32(rng.below(shape.vocabSize)) }
    var table = Table("family", "prefill tok/s", "x Qwen2", "decode tok/s", "x Qwen2", "train step s", "x Qwen2")
    var qwen: (prefill: Double, decode: Double, train: Double)?
    for family in ModelFamily.allCases {
        let dir = base.appendingPathComponent(family.rawValue)
        if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) {
            print("writing a random 0.5B-shaped \(family.displayName) (bf16) to \(dir.path) ...")
            try SyntheticModel.write(SyntheticModel.reshaped(shape, as: family), dtype: .bf16, seed: 1, to: dir)
        }
        let model = try Qwen2Model(directory: dir)
        let prefill = try bestTime(repeats: 3) {
            let cache = KVCache(config: model.config)
            let s = cache.addSequence(capacity: prompt)
            _ = try model.forward([ForwardInput(sequence: s, tokens: ids)], cache: cache)
        }
        let decode = try bestTime(repeats: 3) {
            let d = try GreedyDecode(model, prompt: Array(ids.prefix(8)), steps: steps)
            for _ in 0..<steps { try d.step() }
        }
        // The decode timing includes an 8-token prefill; take it out with its own measurement.
        let shortPrefill = try bestTime(repeats: 3) {
            let cache = KVCache(config: model.config)
            let s = cache.addSequence(capacity: 8)
            _ = try model.forward([ForwardInput(sequence: s, tokens: Array(ids.prefix(8)))], cache: cache)
        }
        let params = try LoRAParameters(config: LoRAConfig(rank: 16, alpha: 32, targets: LoRAModule.allCases), model: model.config)
        params.initializePEFT(seed: 0)
        let batch = TrainingBatch(sequences: [(ids.map(Int.init), Array(repeating: true, count: prompt))])
        let trainer = try LoRATrainingModel(weights: model.weights, parameters: params, maxRows: prompt, maxSequence: prompt)
        let train = try bestTime(repeats: 3) { _ = try trainer.accumulateGradients(batch, normalizer: batch.targetCount) }
        let p = Double(prompt) / prefill, d = Double(steps) / max(decode - shortPrefill, 1e-9)
        if family == .qwen2 { qwen = (prefill, decode - shortPrefill, train) }
        let q = qwen!
        table.add(family.displayName, fmt(p), fmt(prefill / q.prefill, 2), fmt(d), fmt((decode - shortPrefill) / q.decode, 2),
                  fmt(train, 2), fmt(train / q.train, 2))
    }
    table.print()
    print("One shape (Qwen2.5-0.5B: hidden 896, 24 layers, 14 heads of 64, vocabulary 151936), bf16 weights, f32 products; 'x Qwen2': time over Qwen2's in this run (above 1: slower).")
}
