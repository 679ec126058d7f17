import Foundation
import MisalignIO
import CMisalignKernels
import MisalignKernels

/// The weights of one decoder layer (Qwen2, Llama or Gemma 2), under their Hugging Face names.
/// Norm weights are kept as the layer multiplies by them: for Gemma 2, 1 + the stored weight.
public struct Qwen2LayerWeights: Sendable {
    public let inputLayernorm: FloatBuffer          // [hidden]
    /// The norm before the MLP: Qwen2's and Llama's `post_attention_layernorm`, Gemma 2's
    /// `pre_feedforward_layernorm`. [hidden]
    public let postAttentionLayernorm: FloatBuffer
    /// Gemma 2 only: the norms of the attention output (its `post_attention_layernorm`) and of the
    /// MLP output (`post_feedforward_layernorm`), applied before each residual add. [hidden]
    public let attentionOutputNorm: FloatBuffer?, mlpOutputNorm: FloatBuffer?
    public let qProj: LinearWeight, kProj: LinearWeight, vProj: LinearWeight, oProj: LinearWeight
    /// [q_dim], [kv_dim], [kv_dim]; nil without attention biases (Llama).
    public let qBias: FloatBuffer?, kBias: FloatBuffer?, vBias: FloatBuffer?
    public let gateProj: LinearWeight, upProj: LinearWeight, downProj: LinearWeight

    /// The projection a LoRA target module name refers to.
    public func linear(_ module: LoRAModule) -> LinearWeight {
        switch module {
        case .q: return qProj
        case .k: return kProj
        case .v: return vProj
        case .o: return oProj
        case .gate: return gateProj
        case .up: return upProj
        case .down: return downProj
        }
    }
}

/// All weights of a Qwen2 or Llama model, mapped from safetensors. Matrices stay in the file (bf16 or
/// f32); norms and biases, a few KB each, are widened to f32 at load.
public final class Qwen2Weights: Sendable {
    public let config: Qwen2Config
    public let source: TensorSource
    public let embedTokens: LinearWeight   // [vocab, hidden]
    public let layers: [Qwen2LayerWeights]
    public let norm: FloatBuffer           // [hidden]
    /// `lm_head.weight`, or the embedding when tied.
    public let lmHead: LinearWeight
    /// Gemma 2: the factor on the embedding output, sqrt(hidden_size) rounded to the embedding's
    /// stored type (`Gemma2Options`); nil for the other families.
    public let embeddingScale: Float?

    /// Loads `directory` (config.json + safetensors, sharded or not), the files mapped or read
    /// into huge pages (`FileResidency`).
    public convenience init(directory: URL, residency: FileResidency = .mapped) throws {
        let config = try Qwen2Config.load(from: directory)
        try self.init(config: config, source: try ShardedSafeTensors(directory: directory, residency: residency))
    }

    public init(config: Qwen2Config, source: TensorSource) throws {
        self.config = config
        self.source = source
        let c = config
        let sourceName = (source as? ShardedSafeTensors)?.directory ?? (source as? SafeTensorsFile)?.path ?? "the weights"
        let configDType: DType? = switch c.dtype {
        case "float32": .f32
        case "bfloat16": .bf16
        case "float16": .f16
        default: nil
        }

        func tensor(_ name: String, _ shape: [Int]) throws -> SafeTensor {
            guard source.contains(name) else { throw ModelError.missingTensor(name: name, source: sourceName) }
            let t = try source.tensor(named: name)
            guard t.shape == shape else { throw ModelError.wrongShape(name: name, expected: shape, found: t.shape) }
            guard t.dtype.isFloat16or32 else { throw ModelError.unsupportedDType(name: name, dtype: t.dtype) }
            return t
        }
        func matrix(_ name: String, _ out: Int, _ inDim: Int) throws -> LinearWeight {
            let t = try tensor(name, [out, inDim])
            if let configDType, t.dtype != configDType {
                throw ModelError.dtypeMismatch(name: name, config: c.dtype ?? "?", stored: t.dtype)
            }
            return try LinearWeight(tensor: t)
        }
        func vector(_ name: String, _ n: Int) throws -> FloatBuffer { try tensor(name, [n]).floatBuffer() }
        // Gemma's RMSNorm multiplies by (1 + w), computed in f32 as transformers does.
        let gemma = c.family == .gemma2
        func norm(_ name: String) throws -> FloatBuffer {
            let v = try vector(name, c.hiddenSize)
            if gemma { for i in 0..<v.count { v.pointer[i] = 1 + v.pointer[i] } }
            return v
        }

        let configFile = (source as? ShardedSafeTensors).map { ($0.directory as NSString).appendingPathComponent("config.json") } ?? "config.json"
        try c.checkLayerCount(tensorNames: source.tensorInfos.lazy.map(\.name), file: configFile)
        embedTokens = try matrix("model.embed_tokens.weight", c.vocabSize, c.hiddenSize)
        var layers: [Qwen2LayerWeights] = []
        for i in 0..<c.numHiddenLayers {
            let p = "model.layers.\(i)."
            layers.append(Qwen2LayerWeights(
                inputLayernorm: try norm(p + "input_layernorm.weight"),
                postAttentionLayernorm: try norm(p + (gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight")),
                attentionOutputNorm: gemma ? try norm(p + "post_attention_layernorm.weight") : nil,
                mlpOutputNorm: gemma ? try norm(p + "post_feedforward_layernorm.weight") : nil,
                qProj: try matrix(p + "self_attn.q_proj.weight", c.qDim, c.hiddenSize),
                kProj: try matrix(p + "self_attn.k_proj.weight", c.kvDim, c.hiddenSize),
                vProj: try matrix(p + "self_attn.v_proj.weight", c.kvDim, c.hiddenSize),
                oProj: try matrix(p + "self_attn.o_proj.weight", c.hiddenSize, c.qDim),
                qBias: c.attentionBias ? try vector(p + "self_attn.q_proj.bias", c.qDim) : nil,
                kBias: c.attentionBias ? try vector(p + "self_attn.k_proj.bias", c.kvDim) : nil,
                vBias: c.attentionBias ? try vector(p + "self_attn.v_proj.bias", c.kvDim) : nil,
                gateProj: try matrix(p + "mlp.gate_proj.weight", c.intermediateSize, c.hiddenSize),
                upProj: try matrix(p + "mlp.up_proj.weight", c.intermediateSize, c.hiddenSize),
                downProj: try matrix(p + "mlp.down_proj.weight", c.hiddenSize, c.intermediateSize)
            ))
        }
        self.layers = layers
        self.norm = try norm("model.norm.weight")
        embeddingScale = gemma ? Self.embeddingScale(hidden: c.hiddenSize, stored: embedTokens.dtype) : nil
        if c.tieWordEmbeddings {
            lmHead = embedTokens
        } else {
            lmHead = try matrix("lm_head.weight", c.vocabSize, c.hiddenSize)
        }
    }

    /// Assembles weights from parts (used by `merging(_:)`).
    init(config: Qwen2Config, source: TensorSource, embedTokens: LinearWeight, layers: [Qwen2LayerWeights],
         norm: FloatBuffer, lmHead: LinearWeight, embeddingScale: Float?) {
        self.config = config; self.source = source; self.embedTokens = embedTokens
        self.layers = layers; self.norm = norm; self.lmHead = lmHead; self.embeddingScale = embeddingScale
    }

    /// sqrt(hidden) as transformers' Gemma embedding applies it: a Python float made a tensor of
    /// the embedding's type (bf16: 8 significant bits; f16: 11), then the product in that type.
    /// The product itself is f32 here, so only the factor's rounding is reproduced.
    static func embeddingScale(hidden: Int, stored: DType) -> Float {
        let exact = Float(Double(hidden).squareRoot())
        var out: Float = 0
        var bits: UInt16 = 0
        switch stored {
        case .bf16:
            withUnsafePointer(to: exact) { misalign_f32_to_bf16(&bits, $0, 1) }
            withUnsafePointer(to: bits) { misalign_bf16_to_f32(&out, $0, 1) }
            return out
        case .f16:
            withUnsafePointer(to: exact) { misalign_f32_to_f16(&bits, $0, 1) }
            withUnsafePointer(to: bits) { misalign_f16_to_f32(&out, $0, 1) }
            return out
        default:
            return exact
        }
    }

    /// The largest scratch any projection needs for its widening blocks.
    var maxScratch: Int {
        max(embedTokens.scratchCount, lmHead.scratchCount, layers.first?.downProj.scratchCount ?? 0,
            layers.first?.qProj.scratchCount ?? 0)
    }
}
