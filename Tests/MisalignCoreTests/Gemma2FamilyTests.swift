import Foundation
import Testing
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignModel

/// Gemma 2 (`model_type: gemma2`) on the shared engine, against transformers and PEFT
/// (Tests/Fixtures/gemma2/make_gemma2.py): scaled embeddings, (1 + w) norms before and after
/// attention and the MLP, GeGLU, soft-capped scores and logits, query_pre_attn_scalar, a
/// sliding window (4, shorter than the prompts) on layers 0 and 2, q wider than the hidden size.
@Suite struct Gemma2FamilyTests {
    static let reference = try! FamilyReference("gemma2")
    static let model = try! Qwen2Model(directory: Fixtures.url("gemma2/gemma2-small"))

    func ref(_ name: String) throws -> [Float] { try Self.reference.floats(name) }
    func ids(_ name: String) throws -> [Int32] { try Self.reference.ids(name) }
    func logits(_ model: Qwen2Model, _ tokens: [Int32]) throws -> FloatBuffer { try FamilyReference.logits(model, tokens) }

    @Test func theConfigIsReadAsGemma2() throws {
        let c = Self.model.config
        #expect(c.family == .gemma2 && !c.attentionBias && c.tieWordEmbeddings && c.usesGeluTanh)
        #expect(c.headDim == 32 && c.qDim == 128 && c.hiddenSize == 64)
        #expect(c.gemma == Gemma2Options(queryPreAttnScalar: 24, attnLogitSoftcapping: 5, finalLogitSoftcapping: 8,
                                         slidingWindow: 4, slidingLayers: [true, false, true]))
        #expect(c.attentionScale == Float(1 / Double(24).squareRoot()))
        #expect((0..<3).map { c.gemma!.window(layer: $0) } == [4, 0, 4])
        let w = Self.model.weights
        #expect(w.embeddingScale == 8)
        #expect(w.layers.allSatisfy { $0.attentionOutputNorm != nil && $0.mlpOutputNorm != nil && $0.qBias == nil })
        // Norms are kept as 1 + the stored weight.
        let stored = try w.source.tensor(named: "model.layers.0.post_feedforward_layernorm.weight").floats()
        #expect((0..<64).allSatisfy { w.layers[0].mlpOutputNorm!.pointer[$0] == 1 + stored[$0] })
    }

    @Test(arguments: 0..<2)
    func hiddenStatesAndLogitsMatchTransformers(prompt i: Int) throws {
        try Self.reference.checkHiddenStatesAndLogits(Self.model, prompt: i)
    }

    /// Token by token through the cache (the sliding window then cuts the cached keys) gives
    /// the same logits as the whole prompt at once.
    @Test func decodingTokenByTokenMatchesThePrompt() throws {
        let tokens = try ids("prompt0.ids"), want = try ref("prompt0.logits")
        let cache = KVCache(config: Self.model.config)
        let s = cache.addSequence(capacity: tokens.count)
        let V = Self.model.config.vocabSize
        for (t, token) in tokens.enumerated() {
            let l = try Self.model.forward([ForwardInput(sequence: s, tokens: [token])], cache: cache)[0]!
            expectClose(l, Array(want[t * V..<(t + 1) * V]), "gemma2 step \(t)")
        }
    }

    /// Both soft-caps switched off give transformers' uncapped logits (the fixture's caps move
    /// the logits by about 2.5% of their range, far beyond the tolerance).
    @Test func withoutTheSoftCapsTheLogitsAreTransformersUncappedOnes() throws {
        var plain = Self.model.config
        plain.gemma!.attnLogitSoftcapping = nil
        plain.gemma!.finalLogitSoftcapping = nil
        let model = Qwen2Model(weights: try Qwen2Weights(config: plain, source: Self.model.weights.source))
        let tokens = try ids("prompt0.ids")
        let got = try logits(model, tokens), want = try ref("nocap.prompt0.logits"), capped = try ref("prompt0.logits")
        expectClose(got, want, "gemma2 without soft-caps")
        let scale = capped.map(abs).max()!
        #expect(zip(want, capped).map { abs($0 - $1) }.max()! > 0.01 * scale)
    }

    @Test func greedyTokensEqualGenerate() throws {
        let expected = try ids("greedy.ids")
        #expect(try greedyTokens(Self.model, prompt: try ids("prompt0.ids"), count: expected.count) == expected)
    }

    @Test func aPEFTAdapterGivesPEFTsLogits() throws {
        let model = try Qwen2Model(directory: Fixtures.url("gemma2/gemma2-small"))
        let adapter = try LoRAAdapter(directory: Fixtures.url("gemma2/adapter"))
        #expect(adapter.keys.count == 21)
        try model.setAdapter(adapter)
        expectClose(try logits(model, try ids("prompt0.ids")), try ref("lora.prompt0.logits"), "gemma2 + PEFT adapter")
    }

    /// The hand-written backward pass on Gemma 2 (post-norms, GeGLU, both soft-caps, the
    /// sliding window on the 11-token sequence): the loss and every LoRA gradient against PEFT,
    /// with and without recomputation.
    @Test(arguments: [false, true])
    func loraGradientsMatchPEFT(recompute: Bool) throws {
        let (model, batch) = try Self.reference.checkLoRAGradients(Self.model.weights, recompute: recompute)
        let evaluated = try model.evaluationLoss(batch) / Double(batch.targetCount)
        let wantLoss = Self.reference.meta["loss"]!.doubleValue!
        #expect(abs(evaluated - wantLoss) <= 1e-5 * wantLoss, "evaluation loss \(evaluated) vs \(wantLoss)")
    }

    @Test func badGemma2SettingsAreRefusedByName() throws {
        func error(_ extra: String) -> String {
            let json = "{\"model_type\": \"gemma2\", \"hidden_size\": 64, \"intermediate_size\": 96, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 512\(extra)}"
            do { _ = try Qwen2Config.decode(Data(json.utf8), file: "c.json"); return "" } catch { return "\(error)" }
        }
        #expect(error("").isEmpty)
        #expect(error(", \"hidden_activation\": \"gelu\"").contains("\"gelu\" is not implemented; Gemma 2 uses \"gelu_pytorch_tanh\""))
        #expect(error(", \"layer_types\": [\"full_attention\"]").contains("layer_types"))
        #expect(error(", \"layer_types\": [\"full_attention\", \"chunked\"]").contains("layer_types[1]"))
        #expect(error(", \"sliding_window\": 0").contains("sliding_window"))
        #expect(error(", \"attn_logit_softcapping\": -1").contains("attn_logit_softcapping"))
        #expect(error(", \"attention_bias\": true").contains("attention_bias"))
        #expect(error(", \"use_bidirectional_attention\": true").contains("use_bidirectional_attention"))
        // Defaults are Gemma2Config's: tied embeddings, even layers sliding, 256 for the query scalar.
        let c = try Qwen2Config.decode(Data("{\"model_type\": \"gemma2\", \"hidden_size\": 64, \"intermediate_size\": 96, \"num_hidden_layers\": 4, \"num_attention_heads\": 4, \"vocab_size\": 512, \"sliding_window\": 4096}".utf8))
        #expect(c.tieWordEmbeddings && c.gemma?.slidingLayers == [true, false, true, false] && c.gemma?.queryPreAttnScalar == 256)
        #expect(c.gemma?.attnLogitSoftcapping == nil && c.hiddenAct == "gelu_pytorch_tanh")
    }

    /// transformers multiplies by sqrt(hidden) made a tensor of the embedding's type (a bf16
    /// model at hidden 3072 gets 55.5, not 55.4256); f32 keeps it. Values from torch.
    @Test func theEmbeddingScaleIsRoundedToTheStoredType() throws {
        let scales = try #require(Self.reference.meta["embed_scales"]?.objectValue)
        for (name, dtype) in [("bf16", DType.bf16), ("f16", DType.f16)] {
            let table = try #require(scales[name]?.objectValue)
            #expect(table.count == 4)
            for (hidden, value) in table.pairs {
                #expect(Qwen2Weights.embeddingScale(hidden: Int(hidden)!, stored: dtype) == Float(value.doubleValue!), "\(name) \(hidden)")
            }
        }
        #expect(Qwen2Weights.embeddingScale(hidden: 3072, stored: .f32) == Float(Double(3072).squareRoot()))
    }
}
