import Foundation
import Testing
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignModel

/// Llama 3 (`model_type: llama`) on the shared engine, against transformers and PEFT
/// (Tests/Fixtures/llama/make_llama.py): no q/k/v biases, GQA, Llama 3 rope scaling, tied
/// embeddings. Hidden states, logits, greedy tokens, a PEFT adapter's logits and LoRA gradients.
@Suite struct LlamaFamilyTests {
    static let reference = try! SafeTensorsFile(url: Fixtures.url("llama/reference.safetensors"))
    static let meta = try! loadJSON("llama/reference.json")
    static let model = try! Qwen2Model(directory: Fixtures.url("llama/llama-small"))

    func ref(_ name: String) throws -> [Float] { try Self.reference.tensor(named: name).floats() }
    func ids(_ name: String) throws -> [Int32] { try Self.reference.tensor(named: name).integers().map { Int32($0) } }

    func logits(_ model: Qwen2Model, _ tokens: [Int32]) throws -> FloatBuffer {
        let cache = KVCache(config: model.config)
        let s = cache.addSequence(capacity: tokens.count)
        return try model.forward([ForwardInput(sequence: s, tokens: tokens, logits: .all)], cache: cache)[0]!
    }

    @Test func theConfigIsReadAsLlama() throws {
        let c = Self.model.config
        #expect(c.family == .llama && !c.attentionBias && c.tieWordEmbeddings && c.numKeyValueHeads == 2 && c.headDim == 16)
        #expect(c.ropeScaling == Llama3RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64))
        #expect(Self.model.weights.layers.allSatisfy { $0.qBias == nil && $0.kBias == nil && $0.vBias == nil })
    }

    /// The three regimes of `_compute_llama3_parameters` at head_dim 16 with the fixture's
    /// original context of 64 (the values themselves are checked through the logits).
    @Test func llama3ScalingKeepsHighAndDividesLowFrequencies() throws {
        let s = try #require(Self.model.config.ropeScaling)
        let inv = (0..<8).map { i in 1 / Float(Foundation.pow(Double(Float(500000)), Double(Float(2 * i) / 16))) }
        let scaled = s.apply(inv)
        #expect(scaled[0] == inv[0])  // wavelength 6.3 < 64 / 4: kept
        #expect(scaled[1] < inv[1] && scaled[1] > inv[1] / 8)  // 32.6: blended
        #expect((2..<8).allSatisfy { scaled[$0] == inv[$0] / 8 })  // > 64: divided by the factor
    }

    @Test(arguments: 0..<2)
    func hiddenStatesAndLogitsMatchTransformers(prompt i: Int) throws {
        let tokens = try ids("prompt\(i).ids")
        let got = try logits(Self.model, tokens), want = try ref("prompt\(i).logits")
        expectClose(got, want, "llama prompt \(i) logits")
        print("[llama] prompt \(i): logits max |diff| / max |logit| \(zip(got.buffer, want).map { abs($0 - $1) }.max()! / want.map(abs).max()!)")
        let cache = KVCache(config: Self.model.config)
        let s = cache.addSequence(capacity: tokens.count)
        let layers = Array(0...Self.model.config.numHiddenLayers)
        let states = try Self.model.forwardCapturing([ForwardInput(sequence: s, tokens: tokens, logits: .none,
                                                                   hiddenStates: [.rows(layers: layers)])], cache: cache).hiddenStates[0][0]
        for l in layers {
            expectCloseToScale(try #require(states.state(layer: l)), try ref("prompt\(i).hidden\(l)"), "llama prompt \(i) hidden state \(l)")
        }
    }

    /// The fixture exercises the scaling: the same weights with plain rotary embeddings miss
    /// transformers' logits by far more than the tolerance.
    @Test func withoutTheScalingTheLogitsDiffer() throws {
        var plain = Self.model.config
        plain.ropeScaling = nil
        let model = Qwen2Model(weights: try Qwen2Weights(config: plain, source: Self.model.weights.source))
        let got = try logits(model, try ids("prompt0.ids")), want = try ref("prompt0.logits")
        let scale = want.map(abs).max()!
        let diff = zip(got.buffer, want).map { abs($0 - $1) }.max()!
        #expect(diff > 0.05 * scale)
        print("[llama] without the scaling: logits max |diff| / max |logit| \(diff / scale)")
    }

    @Test func greedyTokensEqualGenerate() throws {
        let expected = try ids("greedy.ids")
        #expect(try greedyTokens(Self.model, prompt: try ids("prompt0.ids"), count: expected.count) == expected)
    }

    @Test func aPEFTAdapterGivesPEFTsLogits() throws {
        let model = try Qwen2Model(directory: Fixtures.url("llama/llama-small"))
        let adapter = try LoRAAdapter(directory: Fixtures.url("llama/adapter"))
        #expect(adapter.keys.count == 14)
        try model.setAdapter(adapter)
        expectClose(try logits(model, try ids("prompt0.ids")), try ref("lora.prompt0.logits"), "llama + PEFT adapter")
    }

    /// The hand-written backward pass on Llama: the loss and every LoRA gradient against PEFT.
    @Test func loraGradientsMatchPEFT() throws {
        let weights = Self.model.weights
        let adapter = try LoRAAdapter(directory: Fixtures.url("llama/adapter"))
        let p = try LoRAParameters(config: adapter.config, model: weights.config)
        var want = [Float](repeating: .nan, count: p.count)
        for key in p.keys {
            let slot = p.slots[key]!, pair = try #require(adapter.pairs[key])
            (p.values.pointer + slot.a).update(from: pair.a.pointer, count: pair.a.count)
            (p.values.pointer + slot.b).update(from: pair.b.pointer, count: pair.b.count)
            for (off, which) in [(slot.a, "A"), (slot.b, "B")] {
                let g = try ref("grad.\(key.peftPrefix).lora_\(which).weight")
                for i in 0..<g.count { want[off + i] = g[i] }
            }
        }
        let seqs = try (0..<2).map { b in
            (ids: try Self.reference.tensor(named: "grad.seq\(b).ids").integers(),
             mask: try Self.reference.tensor(named: "grad.seq\(b).mask").integers().map { $0 != 0 })
        }
        let batch = TrainingBatch(sequences: seqs)
        let model = try LoRATrainingModel(weights: weights, parameters: p, maxRows: batch.rows, maxSequence: batch.lengths.max()!)
        let loss = try model.accumulateGradients(batch, normalizer: batch.targetCount) / Double(batch.targetCount)
        let wantLoss = Self.meta["loss"]!.doubleValue!
        #expect(batch.targetCount == Self.meta["targets"]!.intValue!)
        #expect(abs(loss - wantLoss) <= 1e-5 * wantLoss, "loss \(loss) vs \(wantLoss)")
        expectClose(p.grads, want, rtol: 1e-4, atol: 1e-4 * (want.map(abs).max() ?? 0), "llama LoRA gradients")
        print("[llama] loss rel err \(abs(loss - wantLoss) / wantLoss), grad max |diff| / max |grad| \(TrainingGradientTests.maxRelative(UnsafeBufferPointer(p.grads.buffer), want))")
    }

    @Test func unsupportedFamiliesAndScalingsAreRefusedByName() throws {
        func error(_ json: String) -> String {
            do { _ = try Qwen2Config.decode(Data(json.utf8), file: "c.json"); return "" } catch { return "\(error)" }
        }
        let base = #""hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 512"#
        #expect(error("{\"model_type\": \"gemma3\", \(base)}").contains("\"gemma3\" is not a supported architecture (supported: \"qwen2\" (Qwen2), \"llama\" (Llama), \"gemma2\" (Gemma 2))"))
        #expect(error("{\"model_type\": \"llama\", \"mlp_bias\": true, \(base)}").contains("mlp_bias"))
        #expect(error("{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}, \(base)}").contains("\"yarn\" rope scaling is not implemented"))
        #expect(error("{\"model_type\": \"llama\", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8}, \(base)}").contains("rope_scaling.low_freq_factor"))
        // Qwen2 asking for llama3 scaling is refused as before.
        #expect(error("{\"model_type\": \"qwen2\", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, \"high_freq_factor\": 4, \"original_max_position_embeddings\": 8192}, \(base)}").contains("not implemented"))
        let llama = try Qwen2Config.decode(Data("{\"model_type\": \"llama\", \"attention_bias\": true, \(base)}".utf8))
        #expect(llama.attentionBias && llama.ropeScaling == nil && llama.ropeTheta == 10000)
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
