import Foundation

/// The decoder architectures Misalign runs, by `config.json`'s `model_type`. One engine runs
/// them all (`Qwen2Model`, `LoRATrainingModel`); what differs between families is data in
/// `Qwen2Config`: whether q/k/v carry biases, the rotary variant, tied embeddings, and Gemma 2's
/// options (`Gemma2Options`).
public enum ModelFamily: String, Sendable, Equatable, CaseIterable {
    /// Qwen2 / Qwen2.5: q/k/v biases, plain rotary embeddings.
    case qwen2
    /// Llama 3.x: no biases (unless `attention_bias`), Llama 3 rotary scaling, GQA.
    case llama
    /// Gemma 2: scaled embeddings, (1 + w) norms before and after attention and the MLP, GeGLU,
    /// soft-capped attention scores and logits, sliding-window attention on alternate layers.
    case gemma2

    public var displayName: String {
        switch self {
        case .qwen2: "Qwen2"
        case .llama: "Llama"
        case .gemma2: "Gemma 2"
        }
    }
}

/// Llama 3's rotary scaling (`rope_type: llama3`): frequencies whose wavelength exceeds
/// `originalMaxPositionEmbeddings / lowFreqFactor` are divided by `factor`, those shorter than
/// `originalMaxPositionEmbeddings / highFreqFactor` are kept, and those between are blended
/// (transformers' `_compute_llama3_parameters`).
public struct Llama3RopeScaling: Sendable, Equatable {
    public var factor: Double
    public var lowFreqFactor: Double
    public var highFreqFactor: Double
    public var originalMaxPositionEmbeddings: Int

    public init(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositionEmbeddings: Int) {
        self.factor = factor; self.lowFreqFactor = lowFreqFactor; self.highFreqFactor = highFreqFactor
        self.originalMaxPositionEmbeddings = originalMaxPositionEmbeddings
    }

    init(_ r: ConfigReader) throws {
        func need(_ key: String) throws -> Double {
            guard let v = try r.double(key) else { throw ConfigError.missingField(file: r.file, field: r.prefix + key) }
            return v
        }
        self.init(factor: try need("factor"), lowFreqFactor: try need("low_freq_factor"), highFreqFactor: try need("high_freq_factor"),
                  originalMaxPositionEmbeddings: try r.requiredInt("original_max_position_embeddings"))
        if !(factor > 0) || !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor) || originalMaxPositionEmbeddings <= 0 {
            throw ConfigError.invalidField(file: r.file, field: r.prefix + "factor",
                                           detail: "llama3 rope scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0")
        }
    }

    /// Scales f32 inverse frequencies as transformers does, in f32.
    public func apply(_ invFreq: [Float]) -> [Float] {
        let old = Float(originalMaxPositionEmbeddings), low = Float(lowFreqFactor), high = Float(highFreqFactor), f = Float(factor)
        // torch compares the f32 wavelengths with the Python floats cast to f32.
        let lowWavelen = Float(Double(originalMaxPositionEmbeddings) / lowFreqFactor)
        let highWavelen = Float(Double(originalMaxPositionEmbeddings) / highFreqFactor)
        return invFreq.map { inv in
            let wavelen = Float(2 * Double.pi) / inv
            let scaled = wavelen > lowWavelen ? inv / f : inv
            guard !(wavelen < highWavelen), !(wavelen > lowWavelen) else { return scaled }
            let smooth = (old / wavelen - low) / (high - low)
            return (1 - smooth) * scaled / f + smooth * scaled
        }
    }
}

/// What Gemma 2 (`model_type: gemma2`) does differently, from its `config.json`
/// (transformers' `Gemma2Config`). The engine reads these; Qwen2 and Llama have none.
///
/// - The embedding output is multiplied by sqrt(hidden_size), rounded to the embedding's
///   stored type as transformers rounds it (a bf16 model multiplies by 55.5, not 55.4256, at
///   hidden 3072).
/// - Every RMSNorm multiplies by (1 + weight); the weights are stored around 0. The loader
///   adds the 1 when it widens them to f32, as transformers does in f32.
/// - Attention and MLP outputs each pass through their own norm (`post_attention_layernorm`,
///   `post_feedforward_layernorm`) before the residual add; the MLP's input norm is
///   `pre_feedforward_layernorm`.
/// - The MLP is GeGLU: gelu with the tanh approximation (`gelu_pytorch_tanh`).
public struct Gemma2Options: Sendable, Equatable {
    /// Scores are scaled by `queryPreAttnScalar^-0.5`, not `head_dim^-0.5`.
    public var queryPreAttnScalar: Double
    /// Attention scores become `cap * tanh(score / cap)` before the softmax; nil: no cap.
    public var attnLogitSoftcapping: Double?
    /// Logits become `cap * tanh(logit / cap)`; nil: no cap.
    public var finalLogitSoftcapping: Double?
    /// Keys a sliding layer's query at position p sees: p - window < j <= p.
    public var slidingWindow: Int?
    /// Per layer: whether it uses the sliding window (`layer_types`, by default the even layers).
    public var slidingLayers: [Bool]

    public init(queryPreAttnScalar: Double, attnLogitSoftcapping: Double?, finalLogitSoftcapping: Double?,
                slidingWindow: Int?, slidingLayers: [Bool]) {
        self.queryPreAttnScalar = queryPreAttnScalar; self.attnLogitSoftcapping = attnLogitSoftcapping
        self.finalLogitSoftcapping = finalLogitSoftcapping; self.slidingWindow = slidingWindow; self.slidingLayers = slidingLayers
    }

    /// Reads the Gemma 2 keys; `layers` is `num_hidden_layers`.
    init(_ r: ConfigReader, layers: Int) throws {
        let file = r.file
        var sliding = (0..<layers).map { $0 % 2 == 0 }
        if let types = r.obj["layer_types"], !types.isNull {
            guard let list = types.arrayValue, list.count == layers else {
                throw ConfigError.invalidField(file: file, field: "layer_types", detail: "must list one type per layer (\(layers))")
            }
            sliding = try list.enumerated().map { i, v in
                switch v.stringValue {
                case "sliding_attention": return true
                case "full_attention": return false
                default: throw ConfigError.invalidField(file: file, field: "layer_types[\(i)]", detail: "is \(v.serialized()); expected \"sliding_attention\" or \"full_attention\"")
                }
            }
        }
        func cap(_ key: String) throws -> Double? {
            guard let v = try r.double(key) else { return nil }
            guard v > 0 else { throw ConfigError.invalidField(file: file, field: key, detail: "must be positive or null, found \(v)") }
            return v
        }
        let window = try r.int("sliding_window")
        if let window, window <= 0 {
            throw ConfigError.invalidField(file: file, field: "sliding_window", detail: "must be positive or null, found \(window)")
        }
        self.init(queryPreAttnScalar: try r.double("query_pre_attn_scalar") ?? 256,
                  attnLogitSoftcapping: try cap("attn_logit_softcapping"), finalLogitSoftcapping: try cap("final_logit_softcapping"),
                  slidingWindow: window, slidingLayers: sliding)
        guard queryPreAttnScalar > 0 else {
            throw ConfigError.invalidField(file: file, field: "query_pre_attn_scalar", detail: "must be positive, found \(queryPreAttnScalar)")
        }
        if try r.bool("use_bidirectional_attention") == true {
            throw ConfigError.unsupported(file: file, field: "use_bidirectional_attention", detail: "bidirectional attention is not implemented; Gemma 2's causal LM is causal")
        }
    }

    /// The sliding window of layer `l`, or 0 for full attention.
    public func window(layer l: Int) -> Int {
        guard let slidingWindow, slidingLayers.indices.contains(l), slidingLayers[l] else { return 0 }
        return slidingWindow
    }
}
