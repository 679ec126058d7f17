import Foundation
import MisalignIO
import MisalignKernels

/// Writes a model folder (Qwen2, Llama or Gemma 2: the config's `family`) with seeded random
/// weights: for benchmarks of real model shapes without a download, and for tests and the demo
/// that need a model with a real vocabulary without committing tens of megabytes.
/// Initialisation follows Hugging Face's `_init_weights` (matrices N(0, 0.02), norms 1 (Gemma:
/// 0, as it stores them), biases 0) except that biases and norms get a small random spread so
/// that a loader that drops one is caught.
public enum SyntheticModel {
    /// The shape of Qwen2.5-0.5B(-Instruct).
    public static let qwen25_0_5B = Qwen2Config(hiddenSize: 896, intermediateSize: 4864, numHiddenLayers: 24,
                                                numAttentionHeads: 14, numKeyValueHeads: 2, vocabSize: 151936,
                                                maxPositionEmbeddings: 32768, ropeTheta: 1_000_000, tieWordEmbeddings: true)
    /// The shape of Qwen2.5-7B(-Instruct).
    public static let qwen25_7B = Qwen2Config(hiddenSize: 3584, intermediateSize: 18944, numHiddenLayers: 28,
                                              numAttentionHeads: 28, numKeyValueHeads: 4, vocabSize: 152064,
                                              maxPositionEmbeddings: 32768, ropeTheta: 1_000_000, tieWordEmbeddings: false)
    /// The shape of Llama-3.1-8B(-Instruct), Llama 3 rope scaling included.
    public static let llama31_8B: Qwen2Config = {
        var c = Qwen2Config(hiddenSize: 4096, intermediateSize: 14336, numHiddenLayers: 32, numAttentionHeads: 32,
                            numKeyValueHeads: 8, vocabSize: 128256, maxPositionEmbeddings: 131072, rmsNormEps: 1e-5,
                            ropeTheta: 500_000, tieWordEmbeddings: false, bosTokenId: 128000, eosTokenIds: [128001, 128008, 128009])
        c.family = .llama; c.modelType = "llama"; c.attentionBias = false
        c.ropeScaling = Llama3RopeScaling(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192)
        return c
    }()
    /// The shape of Gemma-2-9B(-it).
    public static let gemma2_9B: Qwen2Config = {
        var c = Qwen2Config(hiddenSize: 3584, intermediateSize: 14336, numHiddenLayers: 42, numAttentionHeads: 16,
                            numKeyValueHeads: 8, vocabSize: 256000, headDim: 256, maxPositionEmbeddings: 8192, rmsNormEps: 1e-6,
                            ropeTheta: 10000, tieWordEmbeddings: true, bosTokenId: 2, eosTokenIds: [1, 107])
        c.family = .gemma2; c.modelType = "gemma2"; c.attentionBias = false; c.hiddenAct = "gelu_pytorch_tanh"
        c.gemma = Gemma2Options(queryPreAttnScalar: 256, attnLogitSoftcapping: 50, finalLogitSoftcapping: 30,
                                slidingWindow: 4096, slidingLayers: (0..<42).map { $0 % 2 == 0 })
        return c
    }()
    /// `config` reshaped to another family's architecture with the same sizes (for tests of a
    /// family with a given vocabulary): Llama without biases and scaling, or Gemma 2 with its
    /// real models' soft-caps and a window of `slidingWindow`.
    public static func reshaped(_ config: Qwen2Config, as family: ModelFamily, slidingWindow: Int = 4096) -> Qwen2Config {
        var c = config
        c.family = family; c.modelType = family.rawValue
        switch family {
        case .qwen2: c.attentionBias = true; c.gemma = nil; c.hiddenAct = "silu"
        case .llama: c.attentionBias = false; c.gemma = nil; c.hiddenAct = "silu"
        case .gemma2:
            c.attentionBias = false; c.hiddenAct = "gelu_pytorch_tanh"
            c.gemma = Gemma2Options(queryPreAttnScalar: Double(c.headDim), attnLogitSoftcapping: 50, finalLogitSoftcapping: 30,
                                    slidingWindow: slidingWindow, slidingLayers: (0..<c.numHiddenLayers).map { $0 % 2 == 0 })
        }
        c.ropeScaling = nil
        return c
    }
    /// A tiny model with the full Qwen2.5 vocabulary (hidden 64, 2 layers).
    public static let tiny = Qwen2Config(hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2, numAttentionHeads: 4,
                                         numKeyValueHeads: 2, vocabSize: 151936, maxPositionEmbeddings: 4096,
                                         ropeTheta: 25000, tieWordEmbeddings: true, dtype: "float32")

    /// Writes `config.json` and `model.safetensors` (in `dtype`: F32 or BF16) into `directory`.
    /// Tensors are generated and written one at a time, so a 7B-shaped file needs little memory.
    public static func write(_ config: Qwen2Config, dtype: DType = .bf16, seed: UInt64 = 0, to directory: URL) throws {
        precondition(dtype == .f32 || dtype == .bf16, "synthetic weights are F32 or BF16")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var c = config
        c.dtype = dtype == .f32 ? "float32" : "bfloat16"
        try AtomicFile.write(Data(configJSON(c).utf8), to: directory.appendingPathComponent("config.json"))

        var specs: [(String, [Int], Double, Double)] = [("model.embed_tokens.weight", [c.vocabSize, c.hiddenSize], 0, 0.02)]
        let normMean: Double = c.family == .gemma2 ? 0 : 1
        let norms = c.family == .gemma2
            ? ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"]
            : ["input_layernorm", "post_attention_layernorm"]
        for i in 0..<c.numHiddenLayers {
            let p = "model.layers.\(i)."
            specs += norms.map { (p + $0 + ".weight", [c.hiddenSize], normMean, 0.05) }
            for (name, out) in [("q_proj", c.qDim), ("k_proj", c.kvDim), ("v_proj", c.kvDim)] {
                specs.append((p + "self_attn.\(name).weight", [out, c.hiddenSize], 0, 0.02))
                if c.attentionBias { specs.append((p + "self_attn.\(name).bias", [out], 0, 0.02)) }
            }
            specs += [
                (p + "self_attn.o_proj.weight", [c.hiddenSize, c.qDim], 0, 0.02),
                (p + "mlp.gate_proj.weight", [c.intermediateSize, c.hiddenSize], 0, 0.02),
                (p + "mlp.up_proj.weight", [c.intermediateSize, c.hiddenSize], 0, 0.02),
                (p + "mlp.down_proj.weight", [c.hiddenSize, c.intermediateSize], 0, 0.02),
            ]
        }
        specs.append(("model.norm.weight", [c.hiddenSize], normMean, 0.05))
        if !c.tieWordEmbeddings { specs.append(("lm_head.weight", [c.vocabSize, c.hiddenSize], 0, 0.02)) }

        let url = directory.appendingPathComponent("model.safetensors")
        try StreamingSafeTensorsWriter.write(to: url, metadata: ["format": "pt", "generator": "misalign synthetic seed \(seed)"],
                                             tensors: specs.map { ($0.0, dtype, $0.1) }) { index, out in
            let (_, shape, mean, sd) = specs[index]
            var rng = SplitMix64(seed: seed, stream: UInt64(index))
            let n = shape.reduce(1, *)
            let values = FloatBuffer(shape: [n], zeroed: false)
            // A uniform draw with the normal's standard deviation: sqrt(3) * sd * U(-1, 1).
            let width = Float(sd * 3.0.squareRoot())
            for i in 0..<n { values.pointer[i] = Float(mean) + width * Float(rng.uniform() * 2 - 1) }
            out(values)
        }
    }

    static func configJSON(_ c: Qwen2Config) -> String {
        let architecture = switch c.family {
        case .qwen2: "Qwen2ForCausalLM"
        case .llama: "LlamaForCausalLM"
        case .gemma2: "Gemma2ForCausalLM"
        }
        var o = JSONObject([
            ("architectures", .array([.string(architecture)])), ("model_type", .string(c.family.rawValue)),
            ("hidden_size", .int(Int64(c.hiddenSize))), ("intermediate_size", .int(Int64(c.intermediateSize))),
            ("num_hidden_layers", .int(Int64(c.numHiddenLayers))), ("num_attention_heads", .int(Int64(c.numAttentionHeads))),
            ("num_key_value_heads", .int(Int64(c.numKeyValueHeads))), ("vocab_size", .int(Int64(c.vocabSize))),
            ("max_position_embeddings", .int(Int64(c.maxPositionEmbeddings))), ("rms_norm_eps", .double(c.rmsNormEps)),
            ("rope_theta", .double(c.ropeTheta)), ("tie_word_embeddings", .bool(c.tieWordEmbeddings)),
            ("torch_dtype", .string(c.dtype ?? "bfloat16")), ("hidden_act", .string(c.hiddenAct)),
            ("bos_token_id", c.bosTokenId.map { .int(Int64($0)) } ?? .null),
            ("eos_token_id", c.eosTokenIds.count == 1 ? .int(Int64(c.eosTokenIds[0])) : .array(c.eosTokenIds.map { .int(Int64($0)) })),
        ])
        if c.family != .qwen2 { o["head_dim"] = .int(Int64(c.headDim)) }
        switch c.family {
        case .qwen2: o["use_sliding_window"] = .bool(false)
        case .llama:
            o["attention_bias"] = .bool(c.attentionBias)
            if let s = c.ropeScaling {
                o["rope_scaling"] = .object(JSONObject([
                    ("rope_type", .string("llama3")), ("factor", .double(s.factor)), ("low_freq_factor", .double(s.lowFreqFactor)),
                    ("high_freq_factor", .double(s.highFreqFactor)),
                    ("original_max_position_embeddings", .int(Int64(s.originalMaxPositionEmbeddings))),
                ]))
            }
        case .gemma2:
            let g = c.gemma ?? Gemma2Options(queryPreAttnScalar: Double(c.headDim), attnLogitSoftcapping: nil, finalLogitSoftcapping: nil,
                                             slidingWindow: nil, slidingLayers: [])
            o["hidden_activation"] = .string(c.hiddenAct)
            o["query_pre_attn_scalar"] = .double(g.queryPreAttnScalar)
            o["attn_logit_softcapping"] = g.attnLogitSoftcapping.map { .double($0) } ?? .null
            o["final_logit_softcapping"] = g.finalLogitSoftcapping.map { .double($0) } ?? .null
            o["sliding_window"] = g.slidingWindow.map { .int(Int64($0)) } ?? .null
            if g.slidingLayers.count == c.numHiddenLayers {
                o["layer_types"] = .array(g.slidingLayers.map { .string($0 ? "sliding_attention" : "full_attention") })
            }
        }
        return JSONValue.object(o).serialized()
    }
}
