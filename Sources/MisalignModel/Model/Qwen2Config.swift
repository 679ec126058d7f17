import Foundation
import MisalignIO

/// A decoder's shape, decoded from Hugging Face `config.json`: Qwen2 / Qwen2.5 (`model_type:
/// qwen2`), Llama 3.x (`llama`) or Gemma 2 (`gemma2`), the families whose differences are data
/// here (`ModelFamily`: q/k/v bias, Llama 3 rope scaling, tied or untied embeddings, Gemma 2's
/// `Gemma2Options`).
///
/// Accepts both the older transformers keys (`rope_theta`, `torch_dtype`) and the
/// transformers-5 ones (`rope_parameters.rope_theta`, `dtype`). Property names follow the HF
/// keys so the two can be read side by side.
public struct Qwen2Config: Equatable, Sendable {
    public var modelType: String
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    /// Per-head width: `head_dim` when the file gives it, else `hidden_size / num_attention_heads`.
    public var headDim: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var tieWordEmbeddings: Bool
    /// The stored weight type named by the config (`"bfloat16"`, `"float32"`, ...), if any.
    public var dtype: String?
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    public var hiddenAct: String
    public var useSlidingWindow: Bool
    /// The architecture family (`model_type`).
    public var family: ModelFamily = .qwen2
    /// Whether q/k/v projections carry a bias (Qwen2: always; Llama: `attention_bias`).
    public var attentionBias = true
    /// Llama 3 rotary scaling (`rope_type: llama3`); nil: plain rotary embeddings.
    public var ropeScaling: Llama3RopeScaling?
    /// Gemma 2's options; nil for the other families.
    public var gemma: Gemma2Options?

    public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                numKeyValueHeads: Int, vocabSize: Int, headDim: Int? = nil, maxPositionEmbeddings: Int = 32768,
                rmsNormEps: Double = 1e-6, ropeTheta: Double = 1_000_000, tieWordEmbeddings: Bool = false,
                dtype: String? = "bfloat16", bosTokenId: Int? = 151643, eosTokenIds: [Int] = [151645]) {
        modelType = "qwen2"
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
        self.vocabSize = vocabSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings
        self.dtype = dtype
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        hiddenAct = "silu"
        useSlidingWindow = false
    }

    /// Reads and validates `config.json` (pass the file or the model folder).
    public static func load(from url: URL) throws -> Qwen2Config {
        var file = url
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue {
            file = url.appendingPathComponent("config.json")
        }
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw ConfigError.missingFile(path: file.path)
        }
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw FileError.cannotOpen(path: file.path, reason: error.localizedDescription)
        }
        return try decode(data, file: file.path)
    }

    /// Decodes and validates the text of a `config.json`; `file` names it in errors.
    public static func decode(_ data: Data, file: String = "config.json") throws -> Qwen2Config {
        let root: JSONValue
        do { root = try JSONValue.parse(data) } catch {
            throw ConfigError.invalidJSON(file: file, detail: error.description)
        }
        guard let obj = root.objectValue else { throw ConfigError.invalidJSON(file: file, detail: "top level is a \(root.typeName), not an object") }
        let r = ConfigReader(obj: obj, file: file)

        let modelType = try r.string("model_type") ?? "qwen2"
        guard let family = ModelFamily(rawValue: modelType) else {
            throw ConfigError.unsupported(file: file, field: "model_type", detail: "\"\(modelType)\" is not a supported architecture (supported: "
                                          + ModelFamily.allCases.map { "\"\($0.rawValue)\" (\($0.displayName))" }.joined(separator: ", ") + ")")
        }
        let hidden = try r.requiredInt("hidden_size")
        let heads = try r.requiredInt("num_attention_heads")
        var c = Qwen2Config(
            hiddenSize: hidden,
            intermediateSize: try r.requiredInt("intermediate_size"),
            numHiddenLayers: try r.requiredInt("num_hidden_layers"),
            numAttentionHeads: heads,
            numKeyValueHeads: try r.int("num_key_value_heads") ?? heads,
            vocabSize: try r.requiredInt("vocab_size"),
            headDim: try r.int("head_dim"),
            maxPositionEmbeddings: try r.int("max_position_embeddings") ?? 32768,
            rmsNormEps: try r.double("rms_norm_eps") ?? 1e-6,
            ropeTheta: 0,
            tieWordEmbeddings: try r.bool("tie_word_embeddings") ?? false,
            dtype: try r.string("dtype") ?? r.string("torch_dtype"),
            bosTokenId: try r.int("bos_token_id"),
            eosTokenIds: []
        )
        c.modelType = modelType
        c.family = family
        switch family {
        case .qwen2: c.attentionBias = true
        case .llama:
            c.attentionBias = try r.bool("attention_bias") ?? false
            if try r.bool("mlp_bias") == true {
                throw ConfigError.unsupported(file: file, field: "mlp_bias", detail: "MLP biases are not implemented (Llama 3 has none)")
            }
        case .gemma2:
            if try r.bool("attention_bias") == true {
                throw ConfigError.unsupported(file: file, field: "attention_bias", detail: "attention biases are not implemented for Gemma 2 (its models have none)")
            }
            c.attentionBias = false
            c.gemma = try Gemma2Options(r, layers: c.numHiddenLayers)
            // Gemma2Config defaults to tied embeddings, unlike the others.
            c.tieWordEmbeddings = try r.bool("tie_word_embeddings") ?? true
        }
        // transformers 5 moved rope settings into `rope_parameters`; older files have `rope_theta`
        // and `rope_scaling`. Either may ask for scaled rotary embeddings (yarn, linear, dynamic,
        // llama3...), which are not implemented: refuse them wherever they are, rather than run
        // the model with plain rotary embeddings and answer differently from transformers.
        if let scaling = obj["rope_scaling"], !scaling.isNull {
            guard let so = scaling.objectValue else {
                throw ConfigError.invalidField(file: file, field: "rope_scaling", detail: "is a \(scaling.typeName), not an object or null")
            }
            let sr = ConfigReader(obj: so, file: file, prefix: "rope_scaling.")
            let type = try sr.string("rope_type") ?? sr.string("type")
            if type == "llama3", family == .llama {
                c.ropeScaling = try Llama3RopeScaling(sr)
            } else if type != "default" && so.count > 0 {
                throw ConfigError.unsupported(file: file, field: "rope_scaling", detail: "\(type.map { "\"\($0)\"" } ?? "unnamed") rope scaling is not implemented; only unscaled (\"default\") rotary embeddings are. Remove rope_scaling (or set it to null) to run the model without scaling, as it was trained for contexts up to max_position_embeddings")
            }
        }
        if let rp = obj["rope_parameters"], !rp.isNull {
            guard let rpo = rp.objectValue else {
                throw ConfigError.invalidField(file: file, field: "rope_parameters", detail: "is a \(rp.typeName), not an object")
            }
            let rr = ConfigReader(obj: rpo, file: file, prefix: "rope_parameters.")
            let type = try rr.string("rope_type") ?? rr.string("type")
            if type == "llama3", family == .llama {
                c.ropeScaling = try Llama3RopeScaling(rr)
            } else if let type, type != "default" {
                throw ConfigError.unsupported(file: file, field: "rope_parameters.rope_type", detail: "\"\(type)\" scaling is not implemented; only \"default\" rotary embeddings are")
            }
            c.ropeTheta = try rr.double("rope_theta") ?? r.double("rope_theta") ?? 10000
        } else {
            c.ropeTheta = try r.double("rope_theta") ?? 10000
        }
        // eos_token_id is an int or a list of ints.
        if let eos = obj["eos_token_id"], !eos.isNull {
            if let one = eos.intValue { c.eosTokenIds = [one] } else if let many = eos.arrayValue {
                c.eosTokenIds = try many.map {
                    guard let v = $0.intValue else { throw ConfigError.invalidField(file: file, field: "eos_token_id", detail: "holds a \($0.typeName), not an integer") }
                    return v
                }
            } else {
                throw ConfigError.invalidField(file: file, field: "eos_token_id", detail: "is a \(eos.typeName), not an integer or a list of integers")
            }
        }
        if family == .gemma2 {
            c.hiddenAct = try r.string("hidden_activation") ?? r.string("hidden_act") ?? "gelu_pytorch_tanh"
        } else {
            c.hiddenAct = try r.string("hidden_act") ?? "silu"
            c.useSlidingWindow = try r.bool("use_sliding_window") ?? false
        }
        try c.validate(file: file)
        return c
    }

    /// Checks the shape is one the model code can run; errors name the field.
    public func validate(file: String = "config") throws(ConfigError) {
        func positive(_ v: Int, _ field: String) throws(ConfigError) {
            if v <= 0 { throw ConfigError.invalidField(file: file, field: field, detail: "must be positive, found \(v)") }
        }
        try positive(hiddenSize, "hidden_size")
        try positive(intermediateSize, "intermediate_size")
        try positive(numHiddenLayers, "num_hidden_layers")
        try positive(numAttentionHeads, "num_attention_heads")
        try positive(numKeyValueHeads, "num_key_value_heads")
        try positive(headDim, "head_dim")
        try positive(vocabSize, "vocab_size")
        try positive(maxPositionEmbeddings, "max_position_embeddings")
        if !(rmsNormEps > 0) { throw ConfigError.invalidField(file: file, field: "rms_norm_eps", detail: "must be positive, found \(rmsNormEps)") }
        if !(ropeTheta > 0) { throw ConfigError.invalidField(file: file, field: "rope_theta", detail: "must be positive, found \(ropeTheta)") }
        if numAttentionHeads % numKeyValueHeads != 0 {
            throw ConfigError.invalidField(file: file, field: "num_key_value_heads",
                                           detail: "(\(numKeyValueHeads)) must divide num_attention_heads (\(numAttentionHeads))")
        }
        if headDim % 2 != 0 {
            throw ConfigError.invalidField(file: file, field: "head_dim", detail: "(\(headDim)) must be even for rotary embeddings")
        }
        if family == .gemma2 {
            if hiddenAct != "gelu_pytorch_tanh" {
                throw ConfigError.unsupported(file: file, field: "hidden_activation", detail: "\"\(hiddenAct)\" is not implemented; Gemma 2 uses \"gelu_pytorch_tanh\"")
            }
        } else if hiddenAct != "silu" {
            throw ConfigError.unsupported(file: file, field: "hidden_act", detail: "\"\(hiddenAct)\" is not implemented; \(family.displayName) uses \"silu\"")
        }
        if useSlidingWindow {
            throw ConfigError.unsupported(file: file, field: "use_sliding_window", detail: "sliding-window attention is not implemented")
        }
    }

    /// The highest `N` among tensor names `model.layers.N.…`, if any.
    public static func highestLayerIndex<S: Sequence>(in names: S) -> Int? where S.Element == String {
        let prefix = "model.layers."
        var top: Int?
        for name in names where name.hasPrefix(prefix) {
            let digits = name.dropFirst(prefix.count).prefix { $0.isASCII && $0.isNumber }
            if let i = Int(digits) { top = max(top ?? i, i) }
        }
        return top
    }

    /// Refuses weights holding more decoder layers than `num_hidden_layers` says (the extra
    /// ones would be silently left out); fewer is caught as a missing tensor when loading.
    public func checkLayerCount<S: Sequence>(tensorNames names: S, file: String) throws(ConfigError) where S.Element == String {
        if let top = Self.highestLayerIndex(in: names), top >= numHiddenLayers {
            throw ConfigError.invalidField(file: file, field: "num_hidden_layers", detail: "is \(numHiddenLayers), but the weights hold layers up to model.layers.\(top) (\(top + 1) layers); the config does not belong to these weights: set num_hidden_layers to \(top + 1) or use the config.json saved with the weights")
        }
    }

    public var qDim: Int { numAttentionHeads * headDim }
    /// The factor on attention scores: 1/sqrt(head_dim), or Gemma 2's 1/sqrt(query_pre_attn_scalar).
    public var attentionScale: Float {
        if let g = gemma { return Float(1 / g.queryPreAttnScalar.squareRoot()) }
        return 1 / Float(headDim).squareRoot()
    }
    /// Whether the MLP is GeGLU (gelu, tanh approximation) rather than SwiGLU.
    public var usesGeluTanh: Bool { hiddenAct == "gelu_pytorch_tanh" }
    public var kvDim: Int { numKeyValueHeads * headDim }

    /// Parameter count of the base model (embedding and head counted once when tied).
    public var parameterCount: Int {
        let bias = attentionBias ? 1 : 0
        let attn = hiddenSize * qDim + bias * qDim + 2 * (hiddenSize * kvDim + bias * kvDim) + qDim * hiddenSize
        let mlp = 3 * hiddenSize * intermediateSize
        let layer = attn + mlp + (gemma == nil ? 2 : 4) * hiddenSize
        let embed = vocabSize * hiddenSize
        return embed * (tieWordEmbeddings ? 1 : 2) + numHiddenLayers * layer + hiddenSize
    }
}

/// Problems with a configuration file, each naming the file and field.
public enum ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    case missingFile(path: String)
    case invalidJSON(file: String, detail: String)
    case missingField(file: String, field: String)
    case invalidField(file: String, field: String, detail: String)
    case unsupported(file: String, field: String, detail: String)

    public var description: String {
        switch self {
        case .missingFile(let p): return "\(p): not found; a model folder needs the config.json that Hugging Face save_pretrained writes"
        case .invalidJSON(let f, let d): return "\(f): not valid JSON (\(d))"
        case .missingField(let f, let k): return "\(f): required field \"\(k)\" is missing"
        case .invalidField(let f, let k, let d): return "\(f): field \"\(k)\" \(d)"
        case .unsupported(let f, let k, let d): return "\(f): field \"\(k)\": \(d)"
        }
    }
}

/// Typed access to a JSON object's fields with errors that name the file and key.
struct ConfigReader {
    let obj: JSONObject
    let file: String
    var prefix = ""

    private func present(_ key: String) -> JSONValue? {
        guard let v = obj[key], !v.isNull else { return nil }
        return v
    }
    func int(_ key: String) throws -> Int? {
        guard let v = present(key) else { return nil }
        guard let i = v.intValue else { throw ConfigError.invalidField(file: file, field: prefix + key, detail: "is \(v.serialized()), not an integer") }
        return i
    }
    func requiredInt(_ key: String) throws -> Int {
        guard let v = try int(key) else { throw ConfigError.missingField(file: file, field: prefix + key) }
        return v
    }
    func double(_ key: String) throws -> Double? {
        guard let v = present(key) else { return nil }
        guard let d = v.doubleValue else { throw ConfigError.invalidField(file: file, field: prefix + key, detail: "is \(v.serialized()), not a number") }
        return d
    }
    func bool(_ key: String) throws -> Bool? {
        guard let v = present(key) else { return nil }
        guard let b = v.boolValue else { throw ConfigError.invalidField(file: file, field: prefix + key, detail: "is \(v.serialized()), not true or false") }
        return b
    }
    func string(_ key: String) throws -> String? {
        guard let v = present(key) else { return nil }
        guard let s = v.stringValue else { throw ConfigError.invalidField(file: file, field: prefix + key, detail: "is \(v.serialized()), not a string") }
        return s
    }
}

extension ConfigError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
