import Foundation
import MisalignIO
import MisalignKernels

/// The GGUF architectures (`general.architecture`) the importer maps to Hugging Face checkpoints.
public enum GGUFArchitecture: String, CaseIterable, Sendable {
    /// Qwen2 / Qwen2.5: q/k/v biases; tensors stored as in the HF checkpoint.
    case qwen2
    /// Llama 3.x: llama.cpp permutes q/k rows for its rotary layout (undone on import); Llama 3
    /// rope scaling travels as a `rope_freqs` tensor.
    case llama
    /// Gemma 2: four norms per layer, stored by llama.cpp with the `1 +` of Gemma's RMSNorm
    /// already added (subtracted on import); tied embeddings; logit soft-capping.
    case gemma2

    /// The `model_type` of the written config.json.
    public var modelType: String { rawValue }

    /// The HF class name for `architectures` in config.json.
    var hfClass: String {
        switch self {
        case .qwen2: "Qwen2ForCausalLM"
        case .llama: "LlamaForCausalLM"
        case .gemma2: "Gemma2ForCausalLM"
        }
    }

    /// The Hugging Face name of GGUF tensor `name`; nil for tensors that carry no weight of
    /// their own (`rope_freqs`, folded into config.json) or that this architecture does not have.
    public func hfName(for name: String) -> String? {
        switch name {
        case "token_embd.weight": return "model.embed_tokens.weight"
        case "output_norm.weight": return "model.norm.weight"
        case "output.weight": return "lm_head.weight"
        default: break
        }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0,
              parts[3] == "weight" || parts[3] == "bias" else { return nil }
        let suffix = parts[3]
        let module: String
        switch (parts[2], self) {
        case ("attn_q", _): module = "self_attn.q_proj"
        case ("attn_k", _): module = "self_attn.k_proj"
        case ("attn_v", _): module = "self_attn.v_proj"
        case ("attn_output", _): module = "self_attn.o_proj"
        case ("ffn_gate", _): module = "mlp.gate_proj"
        case ("ffn_up", _): module = "mlp.up_proj"
        case ("ffn_down", _): module = "mlp.down_proj"
        case ("attn_norm", _): module = "input_layernorm"
        case ("ffn_norm", .gemma2): module = "pre_feedforward_layernorm"
        case ("ffn_norm", _): module = "post_attention_layernorm"
        case ("post_attention_norm", .gemma2): module = "post_attention_layernorm"
        case ("post_ffw_norm", .gemma2): module = "post_feedforward_layernorm"
        default: return nil
        }
        if suffix == "bias" && !(self == .qwen2 && ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"].contains(module)) {
            return nil
        }
        return "model.layers.\(layer).\(module).\(suffix)"
    }

    /// GGUF tensors that are read but not written as weights.
    func isConsumed(_ name: String) -> Bool { self == .llama && name == "rope_freqs.weight" }

    /// How a tensor's values change on import, beyond renaming.
    enum Transform: Equatable { case none, unpermuteRows(heads: Int), subtractOne }

    func transform(for name: String, heads: Int, kvHeads: Int) -> Transform {
        switch self {
        case .llama:
            if name.hasSuffix(".attn_q.weight") { return .unpermuteRows(heads: heads) }
            if name.hasSuffix(".attn_k.weight") { return .unpermuteRows(heads: kvHeads) }
            return .none
        case .gemma2: return name.hasSuffix("norm.weight") ? .subtractOne : .none
        case .qwen2: return .none
        }
    }
}

enum GGUFTransforms {
    /// Undoes llama.cpp's rotary permutation of q/k rows: within each of `heads` heads of `d`
    /// rows, GGUF row `2i + j` holds HF row `j * d/2 + i` (transformers' `_reverse_permute_weights`).
    static func unpermuteRows(_ x: FloatBuffer, heads: Int, file: String, tensor: String) throws(GGUFError) -> FloatBuffer {
        let rows = x.shape.first ?? 0, cols = x.count / max(rows, 1)
        guard heads > 0, rows % (2 * heads) == 0 else {
            throw .invalidTensor(file: file, tensor: tensor, detail: "has \(rows) rows, not a multiple of 2 x \(heads) heads")
        }
        let d = rows / heads, half = d / 2
        let out = FloatBuffer(shape: x.shape, zeroed: false)
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    (out.pointer + (h * d + j * half + i) * cols).update(from: x.pointer + (h * d + 2 * i + j) * cols, count: cols)
                }
            }
        }
        return out
    }

    static func subtractOne(_ x: FloatBuffer) {
        for i in 0..<x.count { x.pointer[i] -= 1 }
    }
}
