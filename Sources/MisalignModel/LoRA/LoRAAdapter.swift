import Foundation
import MisalignKernels

/// A projection LoRA can target, under its PEFT name.
public enum LoRAModule: String, CaseIterable, Sendable, Comparable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj", gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// Path of the module inside a decoder layer.
    public var path: String {
        switch self {
        case .q, .k, .v, .o: return "self_attn.\(rawValue)"
        case .gate, .up, .down: return "mlp.\(rawValue)"
        }
    }
    public static func < (a: LoRAModule, b: LoRAModule) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Which module of which layer an adapter matrix pair belongs to.
public struct LoRAKey: Hashable, Sendable, Comparable {
    public let layer: Int
    public let module: LoRAModule
    public init(layer: Int, module: LoRAModule) { self.layer = layer; self.module = module }
    public static func < (a: LoRAKey, b: LoRAKey) -> Bool { (a.layer, a.module) < (b.layer, b.module) }

    /// PEFT's tensor name prefix for a causal LM: `base_model.model.model.layers.{i}.self_attn.q_proj`.
    public var peftPrefix: String { "base_model.model.model.layers.\(layer).\(module.path)" }
}

/// LoRA hyperparameters, as PEFT's `adapter_config.json` states them.
public struct LoRAConfig: Equatable, Sendable {
    public var rank: Int
    public var alpha: Double
    /// rsLoRA (Kalajdzievski 2023): scale alpha / sqrt(r) instead of alpha / r, so the update's
    /// size does not shrink as the rank grows.
    public var useRSLoRA: Bool
    public var targets: [LoRAModule]
    /// Layers adapted; nil means every layer.
    public var layers: [Int]?
    public var dropout: Double

    public init(rank: Int, alpha: Double, useRSLoRA: Bool = false, targets: [LoRAModule] = LoRAModule.allCases,
                layers: [Int]? = nil, dropout: Double = 0) {
        self.rank = rank; self.alpha = alpha; self.useRSLoRA = useRSLoRA
        self.targets = targets; self.layers = layers; self.dropout = dropout
    }

    /// The factor multiplying B A x.
    public var scale: Float { Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)) }
}

/// A LoRA adapter: for each adapted projection W[out, in], matrices A[r, in] and B[out, r]
/// (PEFT's orientation), so that the adapted layer computes y = x W^T + scale * (x A^T) B^T.
///
/// The adapter is applied beside the base weights, never merged into them, so swapping one
/// checkpoint's adapter for the next costs only the adapter's size.
public final class LoRAAdapter: Sendable {
    public struct Pair: Sendable {
        public let a: FloatBuffer  // [r, in]
        public let b: FloatBuffer  // [out, r]
        public var rank: Int { a.shape[0] }
        public init(a: FloatBuffer, b: FloatBuffer) { self.a = a; self.b = b }
    }
    public let config: LoRAConfig
    public let pairs: [LoRAKey: Pair]
    /// Where the adapter was read from, if anywhere.
    public let path: String?

    public init(config: LoRAConfig, pairs: [LoRAKey: Pair], path: String? = nil) {
        self.config = config
        self.pairs = pairs
        self.path = path
    }

    public var keys: [LoRAKey] { pairs.keys.sorted() }
    public func pair(layer: Int, module: LoRAModule) -> Pair? { pairs[LoRAKey(layer: layer, module: module)] }
    public var parameterCount: Int { pairs.values.reduce(0) { $0 + $1.a.count + $1.b.count } }
}

/// Problems with a LoRA adapter folder, naming the file and tensor or field.
public enum LoRAError: Error, CustomStringConvertible, Equatable, Sendable {
    case missingFile(path: String)
    case invalidConfig(file: String, field: String, detail: String)
    case unexpectedTensor(file: String, name: String)
    case unpairedTensor(file: String, name: String)
    case shapeMismatch(file: String, name: String, a: [Int], b: [Int])
    case doesNotFitModel(name: String, detail: String)
    case noTensors(file: String)
    case duplicateTensor(file: String, name: String)

    public var description: String {
        switch self {
        case .missingFile(let p): return "\(p) not found; a PEFT adapter folder has adapter_config.json and adapter_model.safetensors"
        case .invalidConfig(let f, let k, let d): return "\(f): field \"\(k)\" \(d)"
        case .unexpectedTensor(let f, let n): return "\(f): tensor \"\(n)\" is not a LoRA A or B matrix of a decoder projection (q, k, v, o, gate, up, down)"
        case .unpairedTensor(let f, let n): return "\(f): tensor \"\(n)\" has no matching lora_A/lora_B partner"
        case .shapeMismatch(let f, let n, let a, let b): return "\(f): \(n): lora_A \(a) and lora_B \(b) do not multiply (A is [r, in], B is [out, r])"
        case .doesNotFitModel(let n, let d): return "adapter matrix \(n) does not fit the model: \(d)"
        case .noTensors(let f): return "\(f) holds no LoRA matrices; an adapter without any would leave the base model unchanged, so the file is likely truncated or not an adapter"
        case .duplicateTensor(let f, let n): return "\(f): \(n) has its matrices twice (under both the lora_A.weight and lora_A.default.weight names); keep one"
        }
    }
}

extension Qwen2Weights {
    /// A copy of these weights with `adapter` merged in: every adapted projection becomes
    /// `W + scale * B A` in f32; the other tensors stay shared with this instance. Use it to
    /// export or to run one adapter without its per-token cost; `Qwen2Model.setAdapter` is the
    /// way to swap many checkpoints over one base.
    public func merging(_ adapter: LoRAAdapter) throws -> Qwen2Weights {
        var layers = self.layers
        for key in adapter.keys {
            guard key.layer < layers.count else {
                throw LoRAError.doesNotFitModel(name: key.peftPrefix, detail: "the model has \(layers.count) layers")
            }
            let w = layers[key.layer].linear(key.module)
            let p = adapter.pairs[key]!
            guard p.a.shape == [p.rank, w.inDim], p.b.shape == [w.out, p.rank] else {
                throw LoRAError.doesNotFitModel(name: key.peftPrefix, detail: "A \(p.a.shape), B \(p.b.shape) for a [\(w.out), \(w.inDim)] weight")
            }
            let merged = FloatBuffer(shape: [w.out, w.inDim], zeroed: false)
            // W widened to f32 row by row, then W += scale * B A.
            for r in 0..<w.out { w.row(r, into: merged.pointer + r * w.inDim) }
            BLAS.gemm(m: w.out, n: w.inDim, k: p.rank, alpha: adapter.config.scale, a: p.b.pointer, lda: p.rank,
                      b: p.a.pointer, ldb: w.inDim, beta: 1, c: merged.pointer, ldc: w.inDim)
            layers[key.layer] = layers[key.layer].replacing(key.module, with: LinearWeight(f32: merged.pointer, out: w.out, inDim: w.inDim, owner: merged))
        }
        return Qwen2Weights(config: config, source: source, embedTokens: embedTokens, layers: layers, norm: norm, lmHead: lmHead,
                            embeddingScale: embeddingScale)
    }
}

extension Qwen2LayerWeights {
    /// The same layer with one projection replaced.
    func replacing(_ module: LoRAModule, with w: LinearWeight) -> Qwen2LayerWeights {
        Qwen2LayerWeights(inputLayernorm: inputLayernorm, postAttentionLayernorm: postAttentionLayernorm,
                          attentionOutputNorm: attentionOutputNorm, mlpOutputNorm: mlpOutputNorm,
                          qProj: module == .q ? w : qProj, kProj: module == .k ? w : kProj, vProj: module == .v ? w : vProj,
                          oProj: module == .o ? w : oProj, qBias: qBias, kBias: kBias, vBias: vBias,
                          gateProj: module == .gate ? w : gateProj, upProj: module == .up ? w : upProj,
                          downProj: module == .down ? w : downProj)
    }
}

extension LoRAError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
