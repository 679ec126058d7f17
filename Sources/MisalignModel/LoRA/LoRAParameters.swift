import Foundation
import MisalignKernels

/// The trainable LoRA matrices of a model, in one flat buffer so the optimizer, the gradient
/// norm and checkpoints each run over a single contiguous array.
///
/// Layout: for each key in `keys` order (layer, then module), A `[r, in]` then B `[out, r]`.
/// `grads` has the same layout; the base weights have no gradient buffers at all.
public final class LoRAParameters: Sendable {
    public struct Slot: Sendable {
        public let a: Int, b: Int       // offsets of A and B in the flat buffers
        public let rank: Int, inDim: Int, out: Int
    }
    public let config: LoRAConfig
    public let keys: [LoRAKey]
    public let slots: [LoRAKey: Slot]
    public let values: FloatBuffer
    public let grads: FloatBuffer
    public var count: Int { values.count }

    /// The modules `config` adapts in a model of shape `model`, with their dimensions.
    public init(config: LoRAConfig, model: Qwen2Config) throws {
        self.config = config
        guard config.rank > 0 else { throw TrainingError.invalidSetting(name: "rank", detail: "must be positive") }
        let layers = config.layers ?? Array(0..<model.numHiddenLayers)
        for l in layers where l < 0 || l >= model.numHiddenLayers {
            throw TrainingError.invalidSetting(name: "layers", detail: "layer \(l) is outside 0..<\(model.numHiddenLayers)")
        }
        guard !config.targets.isEmpty, !layers.isEmpty else {
            throw TrainingError.invalidSetting(name: "targets", detail: "no module to adapt")
        }
        var keys: [LoRAKey] = []
        for l in Set(layers).sorted() { for m in Set(config.targets).sorted() { keys.append(LoRAKey(layer: l, module: m)) } }
        var slots: [LoRAKey: Slot] = [:]
        var offset = 0
        for key in keys {
            let (out, inDim) = Self.dims(key.module, model)
            let r = config.rank
            slots[key] = Slot(a: offset, b: offset + r * inDim, rank: r, inDim: inDim, out: out)
            offset += r * inDim + out * r
        }
        self.keys = keys
        self.slots = slots
        values = FloatBuffer(shape: [offset])
        grads = FloatBuffer(shape: [offset])
    }

    /// [out, in] of a projection.
    static func dims(_ m: LoRAModule, _ c: Qwen2Config) -> (Int, Int) {
        switch m {
        case .q: return (c.qDim, c.hiddenSize)
        case .k, .v: return (c.kvDim, c.hiddenSize)
        case .o: return (c.hiddenSize, c.qDim)
        case .gate, .up: return (c.intermediateSize, c.hiddenSize)
        case .down: return (c.hiddenSize, c.intermediateSize)
        }
    }

    /// PEFT's default initialisation (`init_lora_weights=True`): A by `nn.init.kaiming_uniform_(a=sqrt(5))`,
    /// whose bound is gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + a^2)), i.e. exactly
    /// 1 / sqrt(in); B zero, so the adapted model starts equal to the base model.
    /// The draws come from SplitMix64(seed) in key order: reproducible, not torch's bit stream.
    public func initializePEFT(seed: UInt64) {
        var rng = SplitMix64(seed: seed, stream: 0x10_5A)
        values.fill(0)
        let p = values.pointer
        for key in keys {
            let s = slots[key]!
            let bound = 1 / Double(s.inDim).squareRoot()
            for i in 0..<(s.rank * s.inDim) { p[s.a + i] = Float((2 * rng.uniform() - 1) * bound) }
        }
    }

    /// Copies the matrices of `adapter` (which must have the same keys and shapes).
    public func load(_ adapter: LoRAAdapter) throws {
        let have = Set(adapter.keys), want = Set(keys)
        let source = adapter.path ?? "the adapter"
        if let k = want.subtracting(have).min() {
            throw TrainingError.invalidSetting(name: "init-adapter", detail: "\(source) has no matrices for \(k.peftPrefix), which its adapter_config.json (target_modules and layers_to_transform) says it adapts; the adapter is incomplete")
        }
        if let k = have.subtracting(want).min() {
            throw TrainingError.invalidSetting(name: "init-adapter", detail: "\(source) adapts \(k.peftPrefix), which the run's targets and layers leave out")
        }
        for key in keys {
            let s = slots[key]!, pair = adapter.pairs[key]!
            guard pair.a.shape == [s.rank, s.inDim], pair.b.shape == [s.out, s.rank] else {
                throw TrainingError.invalidSetting(name: "init-adapter", detail: "\(key.peftPrefix): A \(pair.a.shape), B \(pair.b.shape), expected [\(s.rank), \(s.inDim)] and [\(s.out), \(s.rank)]")
            }
            (values.pointer + s.a).update(from: pair.a.pointer, count: pair.a.count)
            (values.pointer + s.b).update(from: pair.b.pointer, count: pair.b.count)
        }
    }

    /// A standalone adapter holding a copy of the current values.
    public func adapter() -> LoRAAdapter {
        var pairs: [LoRAKey: LoRAAdapter.Pair] = [:]
        for key in keys {
            let s = slots[key]!
            let a = FloatBuffer(shape: [s.rank, s.inDim], zeroed: false)
            let b = FloatBuffer(shape: [s.out, s.rank], zeroed: false)
            a.pointer.update(from: values.pointer + s.a, count: a.count)
            b.pointer.update(from: values.pointer + s.b, count: b.count)
            pairs[key] = LoRAAdapter.Pair(a: a, b: b)
        }
        return LoRAAdapter(config: config, pairs: pairs)
    }
}
