import CMisalignKernels
import Foundation
import MisalignIO
import MisalignKernels

/// Which logits a forward pass returns for one sequence's new tokens.
public enum LogitsRequest: Sendable { case none, last, all }

/// New tokens for one sequence of a `KVCache`, appended at its current length.
public struct ForwardInput: Sendable {
    public var sequence: Int
    public var tokens: [Int32]
    public var logits: LogitsRequest
    /// Hidden states to capture for these tokens (`HiddenStateRequest`), returned by
    /// `forwardCapturing`; none by default, and then nothing is copied or allocated for them.
    public var hiddenStates: [HiddenStateRequest]
    public init(sequence: Int, tokens: [Int32], logits: LogitsRequest = .last, hiddenStates: [HiddenStateRequest] = []) {
        self.sequence = sequence; self.tokens = tokens; self.logits = logits; self.hiddenStates = hiddenStates
    }
}

/// A Qwen2 / Qwen2.5, Llama 3 or Gemma 2 decoder (Hugging Face `Qwen2ForCausalLM`,
/// `LlamaForCausalLM`, `Gemma2ForCausalLM`; `ModelFamily`), f32 compute over mapped
/// f32/bf16/f16 weights (bf16 products opt-in: `computePrecision`), with an optional LoRA
/// adapter applied beside the base weights.
///
/// A forward pass takes the new tokens of several sequences at once. Their rows are stacked
/// (no padding), every projection runs as one `gemm` over all of them, and attention runs per
/// sequence over its own cache, so a batch gives each sequence exactly what it would get alone.
// Unchecked Sendable: `adapter` and `computePrecision` are the only mutable state. Whoever
// drives the model sets them between forward passes, never while one runs (a generation
// backend swaps checkpoints one at a time; a monitor probe sets its own model's adapter
// while the trainer waits), and the hand-off to the passes (an await, a thread start) orders
// the write before them. Forward passes, concurrent or not, only read the model.
public final class Qwen2Model: @unchecked Sendable {
    public let config: Qwen2Config
    public let weights: Qwen2Weights
    public let rotary: RotaryTable
    /// The adapter applied to every forward pass; swap it between checkpoints.
    public var adapter: LoRAAdapter? {
        didSet { if let adapter { precondition((try? validate(adapter)) != nil, "adapter does not fit the model") } }
    }

    /// The arithmetic of the projections and the head (`ComputePrecision`); `.bf16` is opt-in.
    /// Set it before running forward passes, not while one runs.
    public var computePrecision: ComputePrecision = .f32

    public init(weights: Qwen2Weights) {
        self.config = weights.config
        self.weights = weights
        rotary = RotaryTable(headDim: config.headDim, theta: config.ropeTheta, maxPositions: config.maxPositionEmbeddings,
                             scaleFrequencies: config.ropeScaling?.apply)
    }

    public convenience init(directory: URL, residency: FileResidency = .mapped) throws {
        self.init(weights: try Qwen2Weights(directory: directory, residency: residency))
    }

    /// Sets `adapter` after checking every matrix fits the projection it adapts.
    public func setAdapter(_ a: LoRAAdapter?) throws {
        if let a { try validate(a) }
        adapter = a
    }

    func validate(_ a: LoRAAdapter) throws {
        for key in a.keys {
            let name = key.peftPrefix
            guard key.layer >= 0 && key.layer < config.numHiddenLayers else {
                throw LoRAError.doesNotFitModel(name: name, detail: "the model has \(config.numHiddenLayers) layers")
            }
            let w = weights.layers[key.layer].linear(key.module)
            let p = a.pairs[key]!
            guard p.a.shape == [p.rank, w.inDim], p.b.shape == [w.out, p.rank] else {
                throw LoRAError.doesNotFitModel(name: name, detail: "A \(p.a.shape), B \(p.b.shape) for a [\(w.out), \(w.inDim)] weight")
            }
        }
    }

    /// Observer of intermediate states, for tests and probes: called with a name
    /// (`embed`, `layer.{i}`, `final_norm`) and the `[rows, hidden]` state of all new tokens.
    public typealias StateObserver = (String, TensorView) -> Void

    /// Runs the new tokens through the model, appending their keys and values to `cache`.
    /// Returns, per input, the logits it asked for: `[1, vocab]` for `.last`, `[T, vocab]` for `.all`.
    /// Hidden states the inputs ask for are computed and dropped; `forwardCapturing` returns them.
    public func forward(_ inputs: [ForwardInput], cache: KVCache, observer: StateObserver? = nil) throws -> [FloatBuffer?] {
        try run(inputs, cache: cache, observer: observer).logits
    }

    /// `forward`, also returning the hidden states each input asks for (`ForwardInput.hiddenStates`),
    /// per input and request in order.
    public func forwardCapturing(_ inputs: [ForwardInput], cache: KVCache, observer: StateObserver? = nil) throws -> ForwardOutput {
        let out = try run(inputs, cache: cache, observer: observer)
        return ForwardOutput(logits: out.logits, hiddenStates: out.states ?? inputs.map { _ in [] })
    }

    /// The forward pass; `states` is nil when no input asked for hidden states.
    private func run(_ inputs: [ForwardInput], cache: KVCache, observer: StateObserver?) throws -> (logits: [FloatBuffer?], states: [[HiddenStates]]?) {
        let c = config
        let H = c.hiddenSize, hd = c.headDim, qDim = c.qDim, kvDim = c.kvDim, I = c.intermediateSize
        let n = inputs.reduce(0) { $0 + $1.tokens.count }
        if n == 0 {
            guard inputs.contains(where: { !$0.hiddenStates.isEmpty }) else { return (inputs.map { _ in nil }, nil) }
            let first = inputs.map { cache.sequences.indices.contains($0.sequence) ? cache.sequences[$0.sequence]?.length ?? 0 : 0 }
            return (inputs.map { _ in nil }, try HiddenStateCollector.empty(inputs: inputs, firstPosition: first, config: c))
        }

        // Where each input's rows start, and each row's position; checked before any work.
        var rowStart = [Int](), positions = [Int](), firstPosition = [Int]()
        rowStart.reserveCapacity(inputs.count); positions.reserveCapacity(n); firstPosition.reserveCapacity(inputs.count)
        for inp in inputs {
            guard let s = cache.sequences[inp.sequence] else { throw ModelError.invalidRequest("sequence \(inp.sequence) was removed from the cache") }
            let end = s.length + inp.tokens.count
            if end > c.maxPositionEmbeddings {
                throw ModelError.contextExceeded(sequence: inp.sequence, length: end, limit: c.maxPositionEmbeddings, what: "context length (max_position_embeddings)")
            }
            if end > s.base + s.capacity {
                throw ModelError.contextExceeded(sequence: inp.sequence, length: end, limit: s.base + s.capacity, what: "cache capacity reserved for it")
            }
            for t in inp.tokens where t < 0 || Int(t) >= c.vocabSize { throw ModelError.invalidToken(id: Int(t), vocabSize: c.vocabSize) }
            rowStart.append(positions.count)
            firstPosition.append(s.length)
            positions.append(contentsOf: s.length..<end)
        }
        // Nil unless some input asks for hidden states (requests are checked here, before any work).
        var capture = try HiddenStateCollector(inputs: inputs, rowStart: rowStart, firstPosition: firstPosition, config: c)

        let x = FloatBuffer(shape: [n, H], zeroed: false)
        let xn = FloatBuffer(shape: [n, H], zeroed: false)
        let q = FloatBuffer(shape: [n, qDim], zeroed: false)
        let k = FloatBuffer(shape: [n, kvDim], zeroed: false)
        let v = FloatBuffer(shape: [n, kvDim], zeroed: false)
        let attn = FloatBuffer(shape: [n, qDim], zeroed: false)
        let gate = FloatBuffer(shape: [n, I], zeroed: false)
        let up = FloatBuffer(shape: [n, I], zeroed: false)
        // Gemma 2: a block's output before its norm and residual add.
        let blockOut = c.gemma == nil ? nil : FloatBuffer(shape: [n, H], zeroed: false)
        let scratch = FloatBuffer(shape: [weights.maxScratch], zeroed: false)
        let maxRank = adapter?.pairs.values.map(\.rank).max() ?? 0
        let loraTmp = FloatBuffer(shape: [3 * n * max(maxRank, 1)], zeroed: false) // x A^T of q, k and v side by side

        // Embedding.
        var row = 0
        for inp in inputs {
            for t in inp.tokens { weights.embedTokens.row(Int(t), into: x.pointer + row * H); row += 1 }
        }
        if let s = weights.embeddingScale { for i in 0..<n * H { x.pointer[i] *= s } }
        observer?("embed", x.view)
        capture?.record(index: 0, state: x.pointer)

        let eps = Float(c.rmsNormEps)
        for (l, w) in weights.layers.enumerated() {
            // Attention block.
            misalign_rmsnorm(xn.pointer, x.pointer, w.inputLayernorm.pointer, eps, n, H)
            project([(w.qProj, .q, q.pointer, qDim, w.qBias), (w.kProj, .k, k.pointer, kvDim, w.kBias), (w.vProj, .v, v.pointer, kvDim, w.vBias)],
                    layer: l, x: xn.pointer, ldx: H, rows: n, scratch: scratch, loraTmp: loraTmp)
            let half = hd / 2
            for r in 0..<n {
                let cosp = rotary.cos.pointer + positions[r] * half, sinp = rotary.sin.pointer + positions[r] * half
                misalign_rope(q.pointer + r * qDim, c.numAttentionHeads, hd, hd, cosp, sinp)
                misalign_rope(k.pointer + r * kvDim, c.numKeyValueHeads, hd, hd, cosp, sinp)
            }
            // Append keys and values to the cache.
            for (i, inp) in inputs.enumerated() {
                let s = cache.sequences[inp.sequence]!
                for t in 0..<inp.tokens.count {
                    let r = rowStart[i] + t
                    for g in 0..<c.numKeyValueHeads {
                        cache.slot(s, s.k, layer: l, head: g, position: positions[r]).update(from: k.pointer + r * kvDim + g * hd, count: hd)
                        cache.slot(s, s.v, layer: l, head: g, position: positions[r]).update(from: v.pointer + r * kvDim + g * hd, count: hd)
                    }
                }
            }
            attention(layer: l, inputs: inputs, rowStart: rowStart, positions: positions, cache: cache, q: q.pointer, out: attn.pointer)
            // x += attn Wo^T (Gemma 2: x += norm(attn Wo^T))
            addBlock(w.oProj, .o, outputNorm: w.attentionOutputNorm, layer: l, input: attn.pointer, ldx: qDim, rows: n,
                     stream: x, blockOut: blockOut, normed: xn, scratch: scratch, loraTmp: loraTmp)

            // MLP block: x += down(act(gate(xn)) * up(xn)), act silu or (Gemma 2) gelu-tanh.
            misalign_rmsnorm(xn.pointer, x.pointer, w.postAttentionLayernorm.pointer, eps, n, H)
            project([(w.gateProj, .gate, gate.pointer, I, nil), (w.upProj, .up, up.pointer, I, nil)],
                    layer: l, x: xn.pointer, ldx: H, rows: n, scratch: scratch, loraTmp: loraTmp)
            if c.usesGeluTanh {
                misalign_gelu_tanh_mul_threads(gate.pointer, gate.pointer, up.pointer, n * I, max(1, BLAS.threads))
            } else {
                misalign_silu_mul_threads(gate.pointer, gate.pointer, up.pointer, n * I, max(1, BLAS.threads))
            }
            addBlock(w.downProj, .down, outputNorm: w.mlpOutputNorm, layer: l, input: gate.pointer, ldx: I, rows: n,
                     stream: x, blockOut: blockOut, normed: xn, scratch: scratch, loraTmp: loraTmp)
            observer?("layer.\(l)", x.view)
            // Hidden state l + 1 is this layer's output, except the last: that one is after the final norm.
            if l + 1 < c.numHiddenLayers { capture?.record(index: l + 1, state: x.pointer) }
        }
        for inp in inputs { cache.sequences[inp.sequence]!.length += inp.tokens.count }

        misalign_rmsnorm(xn.pointer, x.pointer, weights.norm.pointer, eps, n, H)
        observer?("final_norm", xn.view)
        capture?.record(index: c.numHiddenLayers, state: xn.pointer)
        let states = capture?.results()

        // Logits: every requested row goes through the head in one product, so the head's
        // weights (the largest matrix) are read once per step, not once per sequence.
        var spans: [(first: Int, rows: Int)] = []
        for (i, inp) in inputs.enumerated() {
            let t = inp.tokens.count
            switch inp.logits {
            case .none: spans.append((0, 0))
            case .last: spans.append((rowStart[i] + t - 1, t > 0 ? 1 : 0))
            case .all: spans.append((rowStart[i], t))
            }
        }
        let wanted = spans.filter { $0.rows > 0 }
        guard !wanted.isEmpty else { return (inputs.map { _ in nil }, states) }
        let V = c.vocabSize
        // One input: its rows already lie together in xn.
        let cap = c.gemma?.finalLogitSoftcapping.map { Float($0) }
        if wanted.count == 1 {
            let out = FloatBuffer(shape: [wanted[0].rows, V], zeroed: false)
            weights.lmHead.apply(x: xn.pointer + wanted[0].first * H, ldx: H, rows: wanted[0].rows, y: out.pointer, ldy: V, scratch: scratch.pointer,
                                 precision: computePrecision)
            if let cap { misalign_softcap(out.pointer, out.count, cap) }
            return (spans.map { $0.rows > 0 ? out : nil }, states)
        }
        // Several: gather their rows (a few KB each), one product, then split the logits.
        let total = wanted.reduce(0) { $0 + $1.rows }
        let gathered = FloatBuffer(shape: [total, H], zeroed: false)
        var r = 0
        for sp in wanted { (gathered.pointer + r * H).update(from: xn.pointer + sp.first * H, count: sp.rows * H); r += sp.rows }
        let all = FloatBuffer(shape: [total, V], zeroed: false)
        weights.lmHead.apply(x: gathered.pointer, ldx: H, rows: total, y: all.pointer, ldy: V, scratch: scratch.pointer,
                               precision: computePrecision)
        if let cap { misalign_softcap(all.pointer, all.count, cap) }
        r = 0
        let logits = spans.map { sp -> FloatBuffer? in
            guard sp.rows > 0 else { return nil }
            let out = FloatBuffer(shape: [sp.rows, V], zeroed: false)
            out.pointer.update(from: all.pointer + r * V, count: sp.rows * V)
            r += sp.rows
            return out
        }
        return (logits, states)
    }

    /// A block's last projection joins the residual stream: stream += input W^T, or for Gemma 2
    /// stream += norm(input W^T) (the product into `blockOut`, its norm into `normed`).
    private func addBlock(_ w: LinearWeight, _ module: LoRAModule, outputNorm: FloatBuffer?, layer: Int, input: UnsafeMutablePointer<Float>,
                          ldx: Int, rows n: Int, stream: FloatBuffer, blockOut: FloatBuffer?, normed: FloatBuffer,
                          scratch: FloatBuffer, loraTmp: FloatBuffer) {
        let H = config.hiddenSize
        guard let blockOut, let outputNorm else {
            project([(w, module, stream.pointer, H, nil)], layer: layer, x: input, ldx: ldx, rows: n, accumulate: true, scratch: scratch, loraTmp: loraTmp)
            return
        }
        project([(w, module, blockOut.pointer, H, nil)], layer: layer, x: input, ldx: ldx, rows: n, scratch: scratch, loraTmp: loraTmp)
        misalign_rmsnorm(normed.pointer, blockOut.pointer, outputNorm.pointer, Float(config.rmsNormEps), n, H)
        misalign_add_inplace(stream.pointer, normed.pointer, n * H)
    }

    /// y = x W^T (+ bias) (+ scale (x A^T) B^T), accumulating into y when asked, for one
    /// projection or several of the same x (q, k, v; gate, up): the base products as one group
    /// (`LinearWeight.apply(group:)`), then each one's bias and adapter.
    private func project(_ parts: [(w: LinearWeight, module: LoRAModule, y: UnsafeMutablePointer<Float>, ldy: Int, bias: FloatBuffer?)],
                         layer: Int, x: UnsafeMutablePointer<Float>, ldx: Int, rows: Int, accumulate: Bool = false,
                         scratch: FloatBuffer, loraTmp: FloatBuffer) {
        LinearWeight.apply(group: parts.map { LinearWeight.GroupProduct(weight: $0.w, y: $0.y, ldy: $0.ldy) }, x: x, ldx: ldx, rows: rows,
                           accumulate: accumulate, scratch: scratch.pointer, precision: computePrecision)
        for p in parts {
            if let bias = p.bias { misalign_add_bias(p.y, bias.pointer, rows, p.w.out) }
        }
        guard let adapter else { return }
        let adapted = parts.compactMap { p in adapter.pair(layer: layer, module: p.module).map { (part: p, pair: $0) } }
        guard !adapted.isEmpty else { return }
        let scale = adapter.config.scale
        if rows <= LinearWeight.directRows {
            // Decoding: the direct kernels on the pool, so no BLAS call (and no OpenBLAS thread
            // spinning beside the pool's) enters a decoding step. t_i[rows, r_i] = x A_i^T for
            // every adapted projection of the group in one job (they share x), side by side in
            // loraTmp; t *= scale; then y_i += t_i B_i^T, one job each.
            var offsets: [Int] = [], total = 0
            for a in adapted { offsets.append(total); total += rows * a.pair.rank }
            LinearWeight.apply(group: zip(adapted, offsets).map { a, off in
                LinearWeight.GroupProduct(weight: LinearWeight(f32: a.pair.a.pointer, out: a.pair.rank, inDim: a.part.w.inDim, owner: a.pair.a),
                                          y: loraTmp.pointer + off, ldy: a.pair.rank)
            }, x: x, ldx: ldx, rows: rows, scratch: scratch.pointer)
            for i in 0..<total { loraTmp.pointer[i] *= scale }
            for (a, off) in zip(adapted, offsets) {
                let r = a.pair.rank
                LinearWeight(f32: a.pair.b.pointer, out: a.part.w.out, inDim: r, owner: a.pair.b)
                    .apply(x: loraTmp.pointer + off, ldx: r, rows: rows, y: a.part.y, ldy: a.part.ldy, accumulate: true, scratch: scratch.pointer)
            }
            return
        }
        for a in adapted {
            // t[rows, r] = x A^T; y += scale * t B^T
            let r = a.pair.rank, w = a.part.w
            BLAS.gemm(transB: true, m: rows, n: r, k: w.inDim, a: x, lda: ldx, b: a.pair.a.pointer, ldb: w.inDim, c: loraTmp.pointer, ldc: r)
            BLAS.gemm(transB: true, m: rows, n: w.out, k: r, alpha: scale, a: loraTmp.pointer, lda: r,
                      b: a.pair.b.pointer, ldb: r, beta: 1, c: a.part.y, ldc: a.part.ldy)
        }
    }

    /// Causal attention of every input's new rows over its cached positions up to each row's
    /// own, all sequences in one job on the kernels' thread pool (`misalign_attention_batch`).
    /// q, out: [rows, qDim] row-major, the inputs' rows stacked as `forward` stacks them.
    private func attention(layer: Int, inputs: [ForwardInput], rowStart: [Int], positions: [Int], cache: KVCache,
                           q: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let c = config
        // Every sequence's runs, flattened: keys and values per sequence as [kvHeads][runs].
        var keys: [UnsafePointer<Float>?] = [], values: [UnsafePointer<Float>?] = []
        var first: [Int] = [], len: [Int] = []
        var spans: [(input: Int, pointers: Int, runs: Int, runCount: Int)] = []
        for (i, inp) in inputs.enumerated() where !inp.tokens.isEmpty {
            let s = cache.sequences[inp.sequence]!
            let p0 = keys.count, r0 = first.count
            for g in 0..<c.numKeyValueHeads {
                for (kp, vp, f, n) in cache.segments(s, layer: layer, head: g, upTo: positions[rowStart[i]] + inp.tokens.count) {
                    keys.append(UnsafePointer(kp)); values.append(UnsafePointer(vp))
                    if g == 0 { first.append(f); len.append(n) }
                }
            }
            spans.append((i, p0, r0, first.count - r0))
        }
        keys.withUnsafeBufferPointer { kb in values.withUnsafeBufferPointer { vb in
            first.withUnsafeBufferPointer { fb in len.withUnsafeBufferPointer { lb in
                let seqs = spans.map { sp in
                    misalign_attention_seq(out: out + rowStart[sp.input] * c.qDim, q: q + rowStart[sp.input] * c.qDim,
                                           count: inputs[sp.input].tokens.count, start: positions[rowStart[sp.input]],
                                           keys: kb.baseAddress! + sp.pointers, values: vb.baseAddress! + sp.pointers,
                                           first: fb.baseAddress! + sp.runs, len: lb.baseAddress! + sp.runs, segments: sp.runCount)
                }
                misalign_attention_batch_capped(seqs, seqs.count, c.qDim, c.qDim, c.numAttentionHeads, c.numKeyValueHeads, c.headDim,
                                                c.attentionScale, Float(c.gemma?.attnLogitSoftcapping ?? 0),
                                                c.gemma?.window(layer: layer) ?? 0, max(1, BLAS.threads))
            } }
        } }
    }
}
