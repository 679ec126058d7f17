import Foundation
import Testing
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignModel

/// Llama 3 (`model_type: llama`) on the shared engine, against transformers and PEFT
/// (Tests/Fixtures/llama/make_llama.py): no q/k/v biases, GQA, Llama 3 rope scaling, tied
/// embeddings. Hidden states, logits, greedy tokens, a PEFT adapter's logits and LoRA gradients.
@Suite struct LlamaFamilyTests {
    static let reference = try! FamilyReference("llama")
    static let model = try! Qwen2Model(directory: Fixtures.url("llama/llama-small"))

    func ref(_ name: String) throws -> [Float] { try Self.reference.floats(name) }
    func ids(_ name: String) throws -> [Int32] { try Self.reference.ids(name) }
    func logits(_ model: Qwen2Model, _ tokens: [Int32]) throws -> FloatBuffer { try FamilyReference.logits(model, tokens) }

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
        try Self.reference.checkHiddenStatesAndLogits(Self.model, prompt: i)
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
        try Self.reference.checkLoRAGradients(Self.model.weights)
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
