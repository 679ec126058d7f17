import Foundation
import Testing
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignModel

/// One family fixture's transformers/PEFT reference (written by `llama/make_llama.py`,
/// `gemma2/make_gemma2.py`): its tensors and JSON, and the checks every family shares.
struct FamilyReference {
    let folder: String
    let tensors: SafeTensorsFile
    let meta: JSONValue

    init(_ folder: String) throws {
        self.folder = folder
        tensors = try SafeTensorsFile(url: Fixtures.url("\(folder)/reference.safetensors"))
        meta = try loadJSON("\(folder)/reference.json")
    }

    func floats(_ name: String) throws -> [Float] { try tensors.tensor(named: name).floats() }
    func ids(_ name: String) throws -> [Int32] { try tensors.tensor(named: name).integers().map { Int32($0) } }

    /// Logits of every position of `tokens` from a fresh cache.
    static func logits(_ model: Qwen2Model, _ tokens: [Int32]) throws -> FloatBuffer {
        let cache = KVCache(config: model.config)
        let s = cache.addSequence(capacity: tokens.count)
        return try model.forward([ForwardInput(sequence: s, tokens: tokens, logits: .all)], cache: cache)[0]!
    }

    /// The prompt's logits and every hidden state against transformers'.
    func checkHiddenStatesAndLogits(_ model: Qwen2Model, prompt i: Int) throws {
        let tokens = try ids("prompt\(i).ids")
        let got = try Self.logits(model, tokens), want = try floats("prompt\(i).logits")
        expectClose(got, want, "\(folder) prompt \(i) logits")
        print("[\(folder)] prompt \(i): logits max |diff| / max |logit| \(zip(got.buffer, want).map { abs($0 - $1) }.max()! / want.map(abs).max()!)")
        let cache = KVCache(config: model.config)
        let s = cache.addSequence(capacity: tokens.count)
        let layers = Array(0...model.config.numHiddenLayers)
        let states = try model.forwardCapturing([ForwardInput(sequence: s, tokens: tokens, logits: .none,
                                                              hiddenStates: [.rows(layers: layers)])], cache: cache).hiddenStates[0][0]
        for l in layers {
            expectCloseToScale(try #require(states.state(layer: l)), try floats("prompt\(i).hidden\(l)"), "\(folder) prompt \(i) hidden state \(l)")
        }
    }

    /// The hand-written backward pass: the loss and every LoRA gradient of the fixture's batch
    /// against PEFT, with the adapter in `\(folder)/adapter`; returns the training model.
    @discardableResult
    func checkLoRAGradients(_ weights: Qwen2Weights, recompute: Bool = false) throws -> (LoRATrainingModel, TrainingBatch) {
        let adapter = try LoRAAdapter(directory: Fixtures.url("\(folder)/adapter"))
        let p = try LoRAParameters(config: adapter.config, model: weights.config)
        var want = [Float](repeating: .nan, count: p.count)
        for key in p.keys {
            let slot = p.slots[key]!, pair = try #require(adapter.pairs[key])
            (p.values.pointer + slot.a).update(from: pair.a.pointer, count: pair.a.count)
            (p.values.pointer + slot.b).update(from: pair.b.pointer, count: pair.b.count)
            for (off, which) in [(slot.a, "A"), (slot.b, "B")] {
                let g = try floats("grad.\(key.peftPrefix).lora_\(which).weight")
                for i in 0..<g.count { want[off + i] = g[i] }
            }
        }
        let seqs = try (0..<2).map { b in
            (ids: try tensors.tensor(named: "grad.seq\(b).ids").integers(),
             mask: try tensors.tensor(named: "grad.seq\(b).mask").integers().map { $0 != 0 })
        }
        let batch = TrainingBatch(sequences: seqs)
        let model = try LoRATrainingModel(weights: weights, parameters: p, maxRows: batch.rows, maxSequence: batch.lengths.max()!,
                                          recompute: recompute)
        let loss = try model.accumulateGradients(batch, normalizer: batch.targetCount) / Double(batch.targetCount)
        let wantLoss = meta["loss"]!.doubleValue!
        #expect(batch.targetCount == meta["targets"]!.intValue!)
        #expect(abs(loss - wantLoss) <= 1e-5 * wantLoss, "loss \(loss) vs \(wantLoss)")
        expectClose(p.grads, want, rtol: 1e-4, atol: 1e-4 * (want.map(abs).max() ?? 0), "\(folder) LoRA gradients")
        print("[\(folder)] recompute \(recompute): loss rel err \(abs(loss - wantLoss) / wantLoss), grad max |diff| / max |grad| \(TrainingGradientTests.maxRelative(UnsafeBufferPointer(p.grads.buffer), want))")
        return (model, batch)
    }
}

/// `count` greedy tokens after `prompt`, one forward per token through the cache (what
/// transformers' `generate(do_sample=False)` produces).
func greedyTokens(_ model: Qwen2Model, prompt: [Int32], count: Int) throws -> [Int32] {
    let cache = KVCache(config: model.config)
    let s = cache.addSequence(capacity: prompt.count + count)
    var next = prompt, produced: [Int32] = []
    for _ in 0..<count {
        let l = try model.forward([ForwardInput(sequence: s, tokens: next)], cache: cache)[0]!
        let argmax = Int32((0..<l.count).max { l.pointer[$0] < l.pointer[$1] }!)
        produced.append(argmax)
        next = [argmax]
    }
    return produced
}
