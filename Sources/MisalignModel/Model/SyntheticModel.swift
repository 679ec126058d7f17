import Foundation
import MisalignIO
import MisalignKernels

/// Writes a Qwen2 model folder with seeded random weights: for benchmarks of real model shapes
/// without a download, and for tests and the demo that need a model with the full Qwen2.5
/// vocabulary without committing tens of megabytes. Initialisation follows Hugging Face's
/// `_init_weights` for Qwen2 (matrices N(0, 0.02), norms 1, biases 0) except that biases and
/// norms get a small random spread so that a loader that drops one is caught.
public enum SyntheticModel {
    /// The shape of Qwen2.5-0.5B(-Instruct).
    public static let qwen25_0_5B = Qwen2Config(hiddenSize: 896, intermediateSize: 4864, numHiddenLayers: 24,
                                                numAttentionHeads: 14, numKeyValueHeads: 2, vocabSize: 151936,
                                                maxPositionEmbeddings: 32768, ropeTheta: 1_000_000, tieWordEmbeddings: true)
    /// The shape of Qwen2.5-7B(-Instruct).
    public static let qwen25_7B = Qwen2Config(hiddenSize: 3584, intermediateSize: 18944, numHiddenLayers: 28,
                                              numAttentionHeads: 28, numKeyValueHeads: 4, vocabSize: 152064,
                                              maxPositionEmbeddings: 32768, ropeTheta: 1_000_000, tieWordEmbeddings: false)
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
        for i in 0..<c.numHiddenLayers {
            let p = "model.layers.\(i)."
            specs += [
                (p + "input_layernorm.weight", [c.hiddenSize], 1, 0.05),
                (p + "post_attention_layernorm.weight", [c.hiddenSize], 1, 0.05),
                (p + "self_attn.q_proj.weight", [c.qDim, c.hiddenSize], 0, 0.02),
                (p + "self_attn.q_proj.bias", [c.qDim], 0, 0.02),
                (p + "self_attn.k_proj.weight", [c.kvDim, c.hiddenSize], 0, 0.02),
                (p + "self_attn.k_proj.bias", [c.kvDim], 0, 0.02),
                (p + "self_attn.v_proj.weight", [c.kvDim, c.hiddenSize], 0, 0.02),
                (p + "self_attn.v_proj.bias", [c.kvDim], 0, 0.02),
                (p + "self_attn.o_proj.weight", [c.hiddenSize, c.qDim], 0, 0.02),
                (p + "mlp.gate_proj.weight", [c.intermediateSize, c.hiddenSize], 0, 0.02),
                (p + "mlp.up_proj.weight", [c.intermediateSize, c.hiddenSize], 0, 0.02),
                (p + "mlp.down_proj.weight", [c.hiddenSize, c.intermediateSize], 0, 0.02),
            ]
        }
        specs.append(("model.norm.weight", [c.hiddenSize], 1, 0.05))
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
        let o = JSONObject([
            ("architectures", .array([.string("Qwen2ForCausalLM")])), ("model_type", .string("qwen2")),
            ("hidden_size", .int(Int64(c.hiddenSize))), ("intermediate_size", .int(Int64(c.intermediateSize))),
            ("num_hidden_layers", .int(Int64(c.numHiddenLayers))), ("num_attention_heads", .int(Int64(c.numAttentionHeads))),
            ("num_key_value_heads", .int(Int64(c.numKeyValueHeads))), ("vocab_size", .int(Int64(c.vocabSize))),
            ("max_position_embeddings", .int(Int64(c.maxPositionEmbeddings))), ("rms_norm_eps", .double(c.rmsNormEps)),
            ("rope_theta", .double(c.ropeTheta)), ("tie_word_embeddings", .bool(c.tieWordEmbeddings)),
            ("torch_dtype", .string(c.dtype ?? "bfloat16")), ("hidden_act", .string("silu")),
            ("bos_token_id", c.bosTokenId.map { .int(Int64($0)) } ?? .null),
            ("eos_token_id", c.eosTokenIds.count == 1 ? .int(Int64(c.eosTokenIds[0])) : .array(c.eosTokenIds.map { .int(Int64($0)) })),
            ("use_sliding_window", .bool(false)),
        ])
        return JSONValue.object(o).serialized()
    }
}
