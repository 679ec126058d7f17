import Foundation

/// The decoder architectures Misalign runs, by `config.json`'s `model_type`. One engine runs
/// them all (`Qwen2Model`, `LoRATrainingModel`); what differs between families is data in
/// `Qwen2Config`: whether q/k/v carry biases, the rotary variant, tied embeddings.
public enum ModelFamily: String, Sendable, Equatable, CaseIterable {
    /// Qwen2 / Qwen2.5: q/k/v biases, plain rotary embeddings.
    case qwen2
    /// Llama 3.x: no biases (unless `attention_bias`), Llama 3 rotary scaling, GQA.
    case llama

    public var displayName: String {
        switch self {
        case .qwen2: "Qwen2"
        case .llama: "Llama"
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
