import Foundation
import MisalignIO

/// Builds the Hugging Face `config.json` of a GGUF model from its metadata (`<arch>.*` keys,
/// llama.cpp's names) and tensor shapes, with transformers' key names and defaults.
enum GGUFModelConfig {
    /// The config as ordered JSON. `dtype` is the stored weight type (`"bfloat16"`, `"float32"`).
    static func build(_ f: GGUFFile, architecture a: GGUFArchitecture, dtype: String) throws -> JSONObject {
        let p = a.rawValue + "."
        let hidden = try f.requiredInt(p + "embedding_length")
        let heads = try f.requiredInt(p + "attention.head_count")
        let kvHeads = try f.int(p + "attention.head_count_kv") ?? heads
        let layers = try f.requiredInt(p + "block_count")
        let embed = try f.tensorInfo(named: "token_embd.weight")
        guard embed.shape.count == 2, embed.shape[1] == hidden else {
            throw GGUFError.unexpectedTensor(file: f.path, tensor: "token_embd.weight", detail: "has shape \(embed.shape), not [vocab, \(hidden)] (\(p)embedding_length)")
        }
        guard heads > 0 else { throw GGUFError.invalidField(file: f.path, field: p + "attention.head_count", detail: "is \(heads)") }
        let headDim = try f.int(p + "attention.key_length") ?? (a == .llama ? f.int(p + "rope.dimension_count") : nil) ?? hidden / heads
        let tied = !f.contains(tensor: "output.weight")
        var c: [(String, JSONValue)] = [
            ("architectures", .array([.string(a.hfClass)])),
            ("model_type", .string(a.modelType)),
            ("hidden_size", .int(Int64(hidden))),
            ("intermediate_size", .int(Int64(try f.requiredInt(p + "feed_forward_length")))),
            ("num_hidden_layers", .int(Int64(layers))),
            ("num_attention_heads", .int(Int64(heads))),
            ("num_key_value_heads", .int(Int64(kvHeads))),
            ("head_dim", .int(Int64(headDim))),
            ("max_position_embeddings", .int(Int64(try f.int(p + "context_length") ?? 8192))),
            ("rms_norm_eps", .double(shortest(try f.double(p + "attention.layer_norm_rms_epsilon") ?? 1e-6))),
            ("rope_theta", .double(shortest(try f.double(p + "rope.freq_base") ?? 10000))),
            ("vocab_size", .int(Int64(embed.shape[0]))),
            ("tie_word_embeddings", .bool(tied)),
        ]
        for (key, gguf) in [("bos_token_id", "tokenizer.ggml.bos_token_id"), ("eos_token_id", "tokenizer.ggml.eos_token_id"),
                            ("pad_token_id", "tokenizer.ggml.padding_token_id")] {
            if let id = try f.int(gguf) { c.append((key, .int(Int64(id)))) }
        }
        switch a {
        case .qwen2:
            c += [("hidden_act", .string("silu")), ("use_sliding_window", .bool(false))]
        case .llama:
            c += [("hidden_act", .string("silu")), ("attention_bias", .bool(f.contains(tensor: "blk.0.attn_q.bias"))), ("mlp_bias", .bool(false))]
            if let scaling = try llama3Scaling(f, theta: try f.double(p + "rope.freq_base") ?? 10000, headDim: headDim) {
                c.append(("rope_scaling", .object(scaling)))
            }
        case .gemma2:
            // llama.cpp scales queries by 1/sqrt(head_dim), except for the 46-layer 27B, which
            // Gemma 2 trained with hidden_size / heads (transformers' query_pre_attn_scalar).
            let scalar = layers == 46 ? hidden / heads : headDim
            c += [("hidden_act", .string("gelu_pytorch_tanh")), ("hidden_activation", .string("gelu_pytorch_tanh")),
                  ("attention_bias", .bool(false)), ("query_pre_attn_scalar", .int(Int64(scalar)))]
            if let w = try f.int(p + "attention.sliding_window") { c.append(("sliding_window", .int(Int64(w)))) }
            if let s = try f.double(p + "attn_logit_softcapping") { c.append(("attn_logit_softcapping", .double(shortest(s)))) }
            if let s = try f.double(p + "final_logit_softcapping") { c.append(("final_logit_softcapping", .double(shortest(s)))) }
        }
        c.append(("torch_dtype", .string(dtype)))
        return JSONObject(c)
    }

    /// A float32 metadata value as the shortest decimal that reads back as the same float32
    /// (1e-6, not 9.99999997e-07), as the HF config it was converted from wrote it.
    static func shortest(_ v: Double) -> Double {
        let f = Float(v)
        return Double(f) == v ? (Double("\(f)") ?? v) : v
    }

    /// Llama 3 rope scaling from the `rope_freqs` tensor llama.cpp writes for `rope_type: llama3`
    /// (per-frequency divisors; the low/high frequency factors and original context are not
    /// stored). The divisors are checked against Llama 3.1/3.2's settings (low 1, high 4,
    /// original context `rope.scaling.original_context_length` or 8192, factor = the largest
    /// divisor); anything else is refused rather than guessed.
    static func llama3Scaling(_ f: GGUFFile, theta: Double, headDim: Int) throws -> JSONObject? {
        guard f.contains(tensor: "rope_freqs.weight") else { return nil }
        let info = try f.tensorInfo(named: "rope_freqs.weight")
        let values = try GGUFDequantizer.floats(f, info).toArray()
        guard values.count == headDim / 2, let factor = values.max(), factor > 0 else {
            throw GGUFError.unexpectedTensor(file: f.path, tensor: "rope_freqs.weight", detail: "has \(values.count) values, not head_dim / 2 = \(headDim / 2)")
        }
        if values.allSatisfy({ $0 == 1 }) { return nil }
        let original = try f.int("llama.rope.scaling.original_context_length") ?? 8192
        let low = 1.0, high = 4.0
        let lowWavelen = Double(original) / low, highWavelen = Double(original) / high
        for (i, got) in values.enumerated() {
            let freq = 1 / Foundation.pow(theta, Double(2 * i) / Double(headDim))
            let wavelen = 2 * Double.pi / freq
            var want = 1.0
            if wavelen > lowWavelen { want = Double(factor) } else if wavelen >= highWavelen {
                let smooth = (Double(original) / wavelen - low) / (high - low)
                want = 1 / ((1 - smooth) / Double(factor) + smooth)
            }
            guard abs(Double(got) - want) <= 1e-4 * want else {
                throw GGUFError.unexpectedTensor(file: f.path, tensor: "rope_freqs.weight",
                    detail: "holds rope divisors that are not Llama 3 scaling with factor \(factor), low_freq_factor 1, high_freq_factor 4 and original_max_position_embeddings \(original) (value \(i) is \(got), not \(want)); only that rope scaling is recognised")
            }
        }
        return JSONObject([("rope_type", .string("llama3")), ("factor", .double(shortest(Double(factor)))),
                           ("low_freq_factor", .double(low)), ("high_freq_factor", .double(high)),
                           ("original_max_position_embeddings", .int(Int64(original)))])
    }
}
