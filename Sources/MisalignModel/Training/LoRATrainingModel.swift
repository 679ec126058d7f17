import CMisalignKernels
import Foundation
import MisalignKernels

/// Qwen2, Llama 3 and Gemma 2 forward and hand-written backward for LoRA training, llm.c style: each layer's forward
/// keeps the activations its backward needs in buffers planned once for the largest batch, and
/// the backward walks the layers in reverse, accumulating gradients for the LoRA A and B only.
///
/// With `recompute` (gradient checkpointing) only each layer's input is kept; the backward
/// reruns one layer's forward into a single set of buffers just before differentiating it, so
/// activation memory is one layer's worth plus `[layers, rows, hidden]`.
///
/// `precision` is the arithmetic of the frozen products (`ComputePrecision`): with `.bf16` and
/// bf16 base weights, the forward's x W^T and the backward's dy W round their activation or
/// gradient to bf16 and multiply on the bf16 dot kernels, as PyTorch's bf16 autocast rounds
/// them; the LoRA A and B, their products and gradients, attention, norms, the loss and the
/// residual stream stay f32. With `.f32` (or f32 weights) nothing is rounded.
// Unchecked Sendable: `dropoutSeed`, `evaluating`, `fingerprint`, `heldOutLoss` and the activation
// buffers change unguarded. A training model belongs to one trainer and runs on its thread,
// one pass at a time; a monitor probe reads its parameters from another thread only while the
// trainer's thread waits for it in the step callback.
public final class LoRATrainingModel: @unchecked Sendable {
    public let config: Qwen2Config
    public let weights: Qwen2Weights
    public let parameters: LoRAParameters
    public let rotary: RotaryTable
    public let recompute: Bool
    public let precision: ComputePrecision
    /// Most rows (tokens over all sequences) and longest sequence a batch may have.
    public let maxRows: Int, maxSequence: Int
    let scale: Float
    /// LoRA dropout probability (PEFT applies it to the adapter's input only: B A dropout(x)).
    let dropout: Float
    /// Seed of the current micro-batch's dropout masks; the trainer sets it from (seed, step,
    /// micro-batch) so a resumed or recomputed pass draws the same masks.
    public var dropoutSeed: UInt64 = 0
    /// Set while `evaluationLoss` runs: the forward skips dropout.
    var evaluating = false
    let dropX, dropTmp: FloatBuffer     // [rows, max(in)] dropped adapter input and its gradient

    /// Activations of one layer; shapes for `maxRows` rows.
    final class LayerActivations {
        let xn1, q, k, v, attn, xMid, xn2, gate, up, h: FloatBuffer
        /// Gemma 2: the attention and MLP outputs before their norms, [rows, H]; nil otherwise.
        let attnOut, mlpOut: FloatBuffer?
        let probs: FloatBuffer          // per sequence, per head: [T, T] softmax of scores
        var loraT: [LoRAModule: FloatBuffer] = [:]  // x A^T of each adapted module, [rows, r]
        init(_ c: Qwen2Config, rows n: Int, attention: Int, lora: [LoRAModule], rank: Int) {
            let H = c.hiddenSize, I = c.intermediateSize
            xn1 = FloatBuffer(shape: [n, H], zeroed: false); xMid = FloatBuffer(shape: [n, H], zeroed: false)
            xn2 = FloatBuffer(shape: [n, H], zeroed: false)
            q = FloatBuffer(shape: [n, c.qDim], zeroed: false); attn = FloatBuffer(shape: [n, c.qDim], zeroed: false)
            k = FloatBuffer(shape: [n, c.kvDim], zeroed: false); v = FloatBuffer(shape: [n, c.kvDim], zeroed: false)
            gate = FloatBuffer(shape: [n, I], zeroed: false); up = FloatBuffer(shape: [n, I], zeroed: false)
            h = FloatBuffer(shape: [n, I], zeroed: false)
            attnOut = c.gemma == nil ? nil : FloatBuffer(shape: [n, H], zeroed: false)
            mlpOut = c.gemma == nil ? nil : FloatBuffer(shape: [n, H], zeroed: false)
            probs = FloatBuffer(shape: [attention], zeroed: false)
            for m in lora { loraT[m] = FloatBuffer(shape: [n, rank], zeroed: false) }
        }
    }

    let inputs: [FloatBuffer]           // per layer: the residual stream entering it, [rows, H]
    let acts: [LayerActivations]        // per layer, or one shared when recomputing
    let x: FloatBuffer                  // residual stream, then its gradient, [rows, H]
    // Backward scratch.
    let dI1, dI2, dI3: FloatBuffer      // [rows, I]
    let dH: FloatBuffer                 // [rows, H]
    let dQ, dAttn: FloatBuffer          // [rows, qDim]
    let dK, dV: FloatBuffer             // [rows, kvDim]
    let dP: FloatBuffer                 // [T, T]
    /// Gemma 2: the gradient of a block's output before its norm, [rows, H]; the raw scores of
    /// one head, [T, T], for the soft-cap's backward; the logits before the cap, [chunk, vocab].
    let dBlock, rawScores, rawLogits: FloatBuffer?
    let dT: FloatBuffer                 // [rows, r]
    let scratch: FloatBuffer
    // Loss head, a chunk of target rows at a time.
    static let headChunk = 128
    let headX, headN, headD: FloatBuffer  // [chunk, H]
    let logits: FloatBuffer               // [chunk, vocab]

    public init(weights: Qwen2Weights, parameters: LoRAParameters, maxRows: Int, maxSequence: Int, recompute: Bool = false,
                precision: ComputePrecision = .f32) throws {
        let c = weights.config
        self.config = c; self.weights = weights; self.parameters = parameters
        self.recompute = recompute; self.precision = precision; self.maxRows = maxRows; self.maxSequence = min(maxSequence, maxRows)
        guard parameters.config.dropout >= 0 && parameters.config.dropout < 1 else {
            throw TrainingError.invalidSetting(name: "dropout", detail: "must be in [0, 1)")
        }
        guard maxSequence <= c.maxPositionEmbeddings else {
            throw TrainingError.invalidSetting(name: "max-length", detail: "\(maxSequence) exceeds max_position_embeddings \(c.maxPositionEmbeddings)")
        }
        scale = parameters.config.scale
        dropout = Float(parameters.config.dropout)
        let widest = dropout > 0 ? maxRows * max(c.hiddenSize, c.intermediateSize, c.qDim) : 0
        dropX = FloatBuffer(shape: [widest], zeroed: false)
        dropTmp = FloatBuffer(shape: [widest], zeroed: false)
        rotary = RotaryTable(headDim: c.headDim, theta: c.ropeTheta, maxPositions: self.maxSequence, scaleFrequencies: c.ropeScaling?.apply)
        let n = maxRows, H = c.hiddenSize, I = c.intermediateSize
        // Attention probabilities of a batch: sum over sequences of heads * T^2 <= heads * maxSeq * rows.
        let attention = c.numAttentionHeads * self.maxSequence * n
        let modules = Array(Set(parameters.keys.map(\.module))).sorted()
        inputs = (0..<c.numHiddenLayers).map { _ in FloatBuffer(shape: [n, H], zeroed: false) }
        acts = (0..<(recompute ? 1 : c.numHiddenLayers)).map { _ in
            LayerActivations(c, rows: n, attention: attention, lora: modules, rank: parameters.config.rank)
        }
        x = FloatBuffer(shape: [n, H], zeroed: false)
        dI1 = FloatBuffer(shape: [n, I], zeroed: false); dI2 = FloatBuffer(shape: [n, I], zeroed: false)
        dI3 = FloatBuffer(shape: [n, I], zeroed: false)
        dH = FloatBuffer(shape: [n, H], zeroed: false)
        dQ = FloatBuffer(shape: [n, c.qDim], zeroed: false); dAttn = FloatBuffer(shape: [n, c.qDim], zeroed: false)
        dK = FloatBuffer(shape: [n, c.kvDim], zeroed: false); dV = FloatBuffer(shape: [n, c.kvDim], zeroed: false)
        dP = FloatBuffer(shape: [self.maxSequence, self.maxSequence], zeroed: false)
        dBlock = c.gemma == nil ? nil : FloatBuffer(shape: [n, H], zeroed: false)
        rawScores = c.gemma?.attnLogitSoftcapping == nil ? nil : FloatBuffer(shape: [self.maxSequence, self.maxSequence], zeroed: false)
        rawLogits = c.gemma?.finalLogitSoftcapping == nil ? nil : FloatBuffer(shape: [Self.headChunk, c.vocabSize], zeroed: false)
        dT = FloatBuffer(shape: [n, parameters.config.rank], zeroed: false)
        let linears = [weights.lmHead] + weights.layers.flatMap { l in LoRAModule.allCases.map { l.linear($0) } }
        scratch = FloatBuffer(shape: [max(1, linears.map(\.trainingScratchCount).max()!)], zeroed: false)
        headX = FloatBuffer(shape: [Self.headChunk, H], zeroed: false)
        headN = FloatBuffer(shape: [Self.headChunk, H], zeroed: false)
        headD = FloatBuffer(shape: [Self.headChunk, H], zeroed: false)
        logits = FloatBuffer(shape: [Self.headChunk, c.vocabSize], zeroed: false)
    }

    /// Bytes of activation and scratch memory planned for this model (not counting weights).
    public var plannedBytes: Int {
        var floats = inputs.reduce(0) { $0 + $1.count } + x.count + dI1.count * 3 + dH.count + dQ.count * 2 + dK.count * 2
        floats += dP.count + dT.count + dropX.count + dropTmp.count + scratch.count + headX.count * 3 + logits.count
        floats += [dBlock, rawScores, rawLogits].reduce(0) { $0 + ($1?.count ?? 0) }
        for a in acts {
            floats += [a.xn1, a.q, a.k, a.v, a.attn, a.xMid, a.xn2, a.gate, a.up, a.h, a.probs].reduce(0) { $0 + $1.count }
            floats += (a.attnOut?.count ?? 0) + (a.mlpOut?.count ?? 0)
            floats += a.loraT.values.reduce(0) { $0 + $1.count }
        }
        return floats * 4
    }

    /// A batch fits the planned activations and every token is in the vocabulary.
    func check(_ batch: TrainingBatch) throws {
        guard batch.rows <= maxRows, batch.lengths.allSatisfy({ $0 <= maxSequence }) else {
            throw TrainingError.invalidSetting(name: "batch", detail: "\(batch.rows) rows (longest \(batch.lengths.max() ?? 0)) exceed the planned \(maxRows) rows / \(maxSequence) per sequence")
        }
        for t in batch.tokens where t < 0 || Int(t) >= config.vocabSize {
            throw TrainingError.invalidSetting(name: "data", detail: "token id \(t) is outside the model's vocabulary of \(config.vocabSize)")
        }
    }

    /// Forward and backward of one micro-batch: adds d(loss)/d(A, B) to `parameters.grads`, where
    /// the loss is the sum of the batch's token cross-entropies divided by `normalizer` (the
    /// target count of the whole optimizer step, as transformers divides by `num_items_in_batch`).
    /// Returns the sum of the batch's token losses (not divided).
    @discardableResult
    public func accumulateGradients(_ batch: TrainingBatch, normalizer: Int) throws -> Double {
        let n = batch.rows
        guard n > 0 else { return 0 }
        try check(batch)
        embed(batch)
        let H = config.hiddenSize
        for l in 0..<config.numHiddenLayers {
            inputs[l].pointer.update(from: x.pointer, count: n * H)
            layerForward(l, acts[recompute ? 0 : l], batch: batch)
        }
        let loss = lossHead(batch, normalizer: normalizer)  // x now holds d(loss)/d(final stream)
        for l in stride(from: config.numHiddenLayers - 1, through: 0, by: -1) {
            let a = acts[recompute ? 0 : l]
            if recompute {
                // Rerun the layer from its saved input; the stream copy it mutates is scratch here.
                dH.pointer.update(from: inputs[l].pointer, count: n * H)
                layerForward(l, a, batch: batch, stream: dH)
            }
            layerBackward(l, a, batch: batch, needInputGradient: l > 0)
        }
        return loss
    }

    /// Loss only (no gradient), for evaluation and tests: the sum of the token cross-entropies.
    public func loss(_ batch: TrainingBatch) throws -> Double {
        let saved = FloatBuffer(shape: [parameters.count], zeroed: false)
        saved.pointer.update(from: parameters.grads.pointer, count: parameters.count)
        defer { parameters.grads.pointer.update(from: saved.pointer, count: parameters.count) }
        return try accumulateGradients(batch, normalizer: 1)
    }

    // MARK: forward

    /// The batch's token embeddings into `x` (Gemma 2: scaled).
    func embed(_ batch: TrainingBatch) {
        let H = config.hiddenSize
        for (r, t) in batch.tokens.enumerated() { weights.embedTokens.row(Int(t), into: x.pointer + r * H) }
        if let s = weights.embeddingScale { for i in 0..<batch.rows * H { x.pointer[i] *= s } }
    }

    /// The LM head on `m` normalised rows of `headN` into `logits` (Gemma 2: soft-capped, the
    /// raw logits kept in `rawLogits` for the backward).
    func headLogits(rows m: Int, precision: ComputePrecision) {
        let H = config.hiddenSize, V = config.vocabSize
        weights.lmHead.applyWide(x: headN.pointer, ldx: H, rows: m, y: logits.pointer, ldy: V, scratch: scratch.pointer, precision: precision)
        if let cap = config.gemma?.finalLogitSoftcapping, let raw = rawLogits {
            raw.pointer.update(from: logits.pointer, count: m * V)
            misalign_softcap(logits.pointer, m * V, Float(cap))
        }
    }

    /// One decoder layer on the stream (by default `x`), in place, keeping activations in `a`.
    func layerForward(_ l: Int, _ a: LayerActivations, batch: TrainingBatch, stream: FloatBuffer? = nil) {
        let c = config, w = weights.layers[l]
        let n = batch.rows, H = c.hiddenSize, qDim = c.qDim, kvDim = c.kvDim, I = c.intermediateSize, hd = c.headDim
        let xs = (stream ?? x).pointer
        let eps = Float(c.rmsNormEps)
        misalign_rmsnorm(a.xn1.pointer, xs, w.inputLayernorm.pointer, eps, n, H)
        projectGroup([(w.qProj, .q, a.q.pointer, qDim), (w.kProj, .k, a.k.pointer, kvDim), (w.vProj, .v, a.v.pointer, kvDim)],
                     l, a, x: a.xn1.pointer, ldx: H, rows: n)
        if let b = w.qBias { misalign_add_bias(a.q.pointer, b.pointer, n, qDim) }
        if let b = w.kBias { misalign_add_bias(a.k.pointer, b.pointer, n, kvDim) }
        if let b = w.vBias { misalign_add_bias(a.v.pointer, b.pointer, n, kvDim) }
        let half = hd / 2
        var r = 0
        for len in batch.lengths {
            for p in 0..<len {
                let cosp = rotary.cos.pointer + p * half, sinp = rotary.sin.pointer + p * half
                misalign_rope(a.q.pointer + (r + p) * qDim, c.numAttentionHeads, hd, hd, cosp, sinp)
                misalign_rope(a.k.pointer + (r + p) * kvDim, c.numKeyValueHeads, hd, hd, cosp, sinp)
            }
            r += len
        }
        attentionForward(l, a, batch: batch)
        if let out = a.attnOut, let norm = w.attentionOutputNorm {
            // Gemma 2: x += norm(attn Wo^T); xn2 is free until the MLP's norm below.
            project(w.oProj, l, .o, a, x: a.attn.pointer, ldx: qDim, rows: n, y: out.pointer, ldy: H)
            misalign_rmsnorm(a.xn2.pointer, out.pointer, norm.pointer, eps, n, H)
            misalign_add_inplace(xs, a.xn2.pointer, n * H)
        } else {
            project(w.oProj, l, .o, a, x: a.attn.pointer, ldx: qDim, rows: n, y: xs, ldy: H, accumulate: true)
        }
        a.xMid.pointer.update(from: xs, count: n * H)
        misalign_rmsnorm(a.xn2.pointer, xs, w.postAttentionLayernorm.pointer, eps, n, H)
        projectGroup([(w.gateProj, .gate, a.gate.pointer, I), (w.upProj, .up, a.up.pointer, I)], l, a, x: a.xn2.pointer, ldx: H, rows: n)
        if c.usesGeluTanh {
            misalign_gelu_tanh_mul_threads(a.h.pointer, a.gate.pointer, a.up.pointer, n * I, max(1, BLAS.threads))
        } else {
            misalign_silu_mul_threads(a.h.pointer, a.gate.pointer, a.up.pointer, n * I, max(1, BLAS.threads))
        }
        if let out = a.mlpOut, let norm = w.mlpOutputNorm, let tmp = dBlock {
            // Gemma 2: x += norm(down(...)); dBlock is only used inside one layer's backward.
            project(w.downProj, l, .down, a, x: a.h.pointer, ldx: I, rows: n, y: out.pointer, ldy: H)
            misalign_rmsnorm(tmp.pointer, out.pointer, norm.pointer, eps, n, H)
            misalign_add_inplace(xs, tmp.pointer, n * H)
        } else {
            project(w.downProj, l, .down, a, x: a.h.pointer, ldx: I, rows: n, y: xs, ldy: H, accumulate: true)
        }
    }

    /// `project` for products sharing x (q, k, v; gate, up): in bf16 their frozen products run
    /// as one group (x rounded and packed once); in f32 one after another, as before.
    private func projectGroup(_ products: [(LinearWeight, LoRAModule, UnsafeMutablePointer<Float>, Int)], _ layer: Int,
                              _ a: LayerActivations, x: UnsafeMutablePointer<Float>, ldx: Int, rows: Int) {
        guard precision == .bf16 else {
            for (w, m, y, ldy) in products { project(w, layer, m, a, x: x, ldx: ldx, rows: rows, y: y, ldy: ldy) }
            return
        }
        LinearWeight.apply(group: products.map { LinearWeight.GroupProduct(weight: $0.0, y: $0.2, ldy: $0.3) }, x: x, ldx: ldx,
                           rows: rows, scratch: scratch.pointer, precision: .bf16)
        for (_, m, y, ldy) in products { addLoRA(layer, m, a, x: x, ldx: ldx, rows: rows, y: y, ldy: ldy) }
    }

    /// y (+)= x W^T + scale (x A^T) B^T, keeping t = x A^T for the backward.
    private func project(_ w: LinearWeight, _ layer: Int, _ m: LoRAModule, _ a: LayerActivations,
                         x: UnsafeMutablePointer<Float>, ldx: Int, rows: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
                         accumulate: Bool = false) {
        w.applyWide(x: x, ldx: ldx, rows: rows, y: y, ldy: ldy, accumulate: accumulate, scratch: scratch.pointer, precision: precision)
        addLoRA(layer, m, a, x: x, ldx: ldx, rows: rows, y: y, ldy: ldy)
    }

    /// y += scale (x A^T) B^T (when the module is adapted), keeping t = x A^T for the backward.
    private func addLoRA(_ layer: Int, _ m: LoRAModule, _ a: LayerActivations, x: UnsafeMutablePointer<Float>, ldx: Int, rows: Int,
                         y: UnsafeMutablePointer<Float>, ldy: Int) {
        guard let s = parameters.slots[LoRAKey(layer: layer, module: m)] else { return }
        let p = parameters.values.pointer, t = a.loraT[m]!.pointer
        var (xin, ldin) = (UnsafePointer(x), ldx)
        if dropout > 0 && !evaluating {
            misalign_dropout(dropX.pointer, x, rows, s.inDim, ldx, dropout, dropSeed(layer, m))
            (xin, ldin) = (UnsafePointer(dropX.pointer), s.inDim)
        }
        BLAS.gemm(transB: true, m: rows, n: s.rank, k: s.inDim, a: xin, lda: ldin, b: p + s.a, ldb: s.inDim, c: t, ldc: s.rank)
        BLAS.gemm(transB: true, m: rows, n: s.out, k: s.rank, alpha: scale, a: t, lda: s.rank, b: p + s.b, ldb: s.rank,
                  beta: 1, c: y, ldc: ldy)
    }

    /// Causal attention of each sequence on its own, per head, keeping the probabilities
    /// (Gemma 2: scores soft-capped, and a sliding window on its sliding layers).
    private func attentionForward(_ l: Int, _ a: LayerActivations, batch: TrainingBatch) {
        let c = config, hd = c.headDim, qDim = c.qDim, kvDim = c.kvDim
        let group = c.numAttentionHeads / c.numKeyValueHeads
        let sm = c.attentionScale
        let cap = c.gemma?.attnLogitSoftcapping.map { Float($0) }, window = c.gemma?.window(layer: l) ?? 0
        var row = 0, pOff = 0
        for T in batch.lengths {
            let valid = (1...T).map { $0 }
            for h in 0..<c.numAttentionHeads {
                let g = h / group
                let P = a.probs.pointer + pOff
                // P[T, T] = softmax(scale * Q_h K_g^T) with row t seeing keys 0...t.
                BLAS.gemm(transB: true, m: T, n: T, k: hd, alpha: sm, a: a.q.pointer + row * qDim + h * hd, lda: qDim,
                          b: a.k.pointer + row * kvDim + g * hd, ldb: kvDim, c: P, ldc: T)
                if let cap { misalign_softcap(P, T * T, cap) }
                if window > 0 && T > window {
                    misalign_softmax_window_rows(P, T, T, window)
                } else {
                    valid.withUnsafeBufferPointer { misalign_softmax_rows(P, T, T, $0.baseAddress) }
                }
                // O_h[T, hd] = P V_g
                BLAS.gemm(m: T, n: hd, k: T, a: P, lda: T, b: a.v.pointer + row * kvDim + g * hd, ldb: kvDim,
                          c: a.attn.pointer + row * qDim + h * hd, ldc: qDim)
                pOff += T * T
            }
            row += T
        }
    }

    // MARK: loss

    /// Final norm, LM head and cross-entropy of the target rows, a chunk at a time; leaves the
    /// gradient of the loss w.r.t. the final residual stream in `x` (zero on rows without target).
    private func lossHead(_ batch: TrainingBatch, normalizer: Int) -> Double {
        let H = config.hiddenSize, V = config.vocabSize, n = batch.rows
        let eps = Float(config.rmsNormEps)
        let rows = batch.targets.indices.filter { batch.targets[$0] >= 0 }
        let stream = FloatBuffer(shape: [rows.count, H], zeroed: false)
        for (i, r) in rows.enumerated() { (stream.pointer + i * H).update(from: x.pointer + r * H, count: H) }
        x.pointer.update(repeating: 0, count: n * H)
        var total = 0.0
        var losses = [Double](repeating: 0, count: Self.headChunk)
        let dscale = Float(1.0 / Double(max(normalizer, 1)))
        var c0 = 0
        while c0 < rows.count {
            let m = min(Self.headChunk, rows.count - c0)
            let xs = stream.pointer + c0 * H
            misalign_rmsnorm(headN.pointer, xs, weights.norm.pointer, eps, m, H)
            headLogits(rows: m, precision: precision)
            let targets = (0..<m).map { batch.targets[rows[c0 + $0]] }
            targets.withUnsafeBufferPointer { t in
                losses.withUnsafeMutableBufferPointer {
                    misalign_cross_entropy_backward_threads(logits.pointer, t.baseAddress, $0.baseAddress, dscale, m, V, max(1, BLAS.threads))
                }
            }
            for i in 0..<m { total += losses[i] }
            if let cap = config.gemma?.finalLogitSoftcapping, let raw = rawLogits {
                misalign_softcap_backward(logits.pointer, raw.pointer, m * V, Float(cap))
            }
            weights.lmHead.applyTransposed(dy: logits.pointer, lddy: V, rows: m, dx: headN.pointer, lddx: H,
                                           accumulate: false, scratch: scratch.pointer, precision: precision)
            headD.pointer.update(repeating: 0, count: m * H)
            misalign_rmsnorm_backward(headD.pointer, headN.pointer, xs, weights.norm.pointer, eps, m, H)
            for i in 0..<m { (x.pointer + rows[c0 + i] * H).update(from: headD.pointer + i * H, count: H) }
            c0 += m
        }
        return total
    }

    // MARK: backward

    /// Backward of layer l: `x` holds d(loss)/d(layer output) and becomes d(loss)/d(layer input)
    /// (when `needInputGradient`; layer 0's input is the frozen embedding, so it is skipped there).
    private func layerBackward(_ l: Int, _ a: LayerActivations, batch: TrainingBatch, needInputGradient: Bool) {
        let c = config, w = weights.layers[l]
        let n = batch.rows, H = c.hiddenSize, qDim = c.qDim, kvDim = c.kvDim, I = c.intermediateSize, hd = c.headDim
        let eps = Float(c.rmsNormEps)
        let dx = x.pointer
        // MLP: out = xMid + down(act(gate) * up) (Gemma 2: xMid + norm(down(...))).
        let pr = precision
        var dy = blockGradient(output: a.mlpOut, norm: w.mlpOutputNorm, rows: n)
        w.downProj.applyTransposed(dy: dy, lddy: H, rows: n, dx: dI1.pointer, lddx: I, accumulate: false, scratch: scratch.pointer, precision: pr)
        loraBackward(l, .down, a, x: a.h.pointer, ldx: I, dy: dy, ldy: H, rows: n, dx: dI1.pointer, lddx: I)
        if c.usesGeluTanh {
            misalign_gelu_tanh_mul_backward_threads(dI2.pointer, dI3.pointer, dI1.pointer, a.gate.pointer, a.up.pointer, n * I, max(1, BLAS.threads))
        } else {
            misalign_silu_mul_backward_threads(dI2.pointer, dI3.pointer, dI1.pointer, a.gate.pointer, a.up.pointer, n * I, max(1, BLAS.threads))
        }
        if pr == .bf16 {
            LinearWeight.applyTransposed(group: [.init(weight: w.gateProj, dy: dI2.pointer, lddy: I), .init(weight: w.upProj, dy: dI3.pointer, lddy: I)],
                                         rows: n, dx: dH.pointer, lddx: H, accumulate: false, scratch: scratch.pointer, precision: pr)
        } else {
            w.gateProj.applyTransposed(dy: dI2.pointer, lddy: I, rows: n, dx: dH.pointer, lddx: H, accumulate: false, scratch: scratch.pointer)
        }
        loraBackward(l, .gate, a, x: a.xn2.pointer, ldx: H, dy: dI2.pointer, ldy: I, rows: n, dx: dH.pointer, lddx: H)
        if pr != .bf16 {
            w.upProj.applyTransposed(dy: dI3.pointer, lddy: I, rows: n, dx: dH.pointer, lddx: H, accumulate: true, scratch: scratch.pointer)
        }
        loraBackward(l, .up, a, x: a.xn2.pointer, ldx: H, dy: dI3.pointer, ldy: I, rows: n, dx: dH.pointer, lddx: H)
        misalign_rmsnorm_backward(dx, dH.pointer, a.xMid.pointer, w.postAttentionLayernorm.pointer, eps, n, H)

        // Attention: xMid = input + o(attention(q, k, v)) (Gemma 2: input + norm(o(...))).
        dy = blockGradient(output: a.attnOut, norm: w.attentionOutputNorm, rows: n)
        w.oProj.applyTransposed(dy: dy, lddy: H, rows: n, dx: dAttn.pointer, lddx: qDim, accumulate: false, scratch: scratch.pointer, precision: pr)
        loraBackward(l, .o, a, x: a.attn.pointer, ldx: qDim, dy: dy, ldy: H, rows: n, dx: dAttn.pointer, lddx: qDim)
        attentionBackward(l, a, batch: batch)
        let half = hd / 2
        var r = 0
        for len in batch.lengths {
            for p in 0..<len {
                let cosp = rotary.cos.pointer + p * half, sinp = rotary.sin.pointer + p * half
                misalign_rope_backward(dQ.pointer + (r + p) * qDim, c.numAttentionHeads, hd, hd, cosp, sinp)
                misalign_rope_backward(dK.pointer + (r + p) * kvDim, c.numKeyValueHeads, hd, hd, cosp, sinp)
            }
            r += len
        }
        let dxn: UnsafeMutablePointer<Float>? = needInputGradient ? dH.pointer : nil
        if needInputGradient, pr == .bf16 {
            LinearWeight.applyTransposed(group: [.init(weight: w.qProj, dy: dQ.pointer, lddy: qDim), .init(weight: w.kProj, dy: dK.pointer, lddy: kvDim),
                                                 .init(weight: w.vProj, dy: dV.pointer, lddy: kvDim)],
                                         rows: n, dx: dH.pointer, lddx: H, accumulate: false, scratch: scratch.pointer, precision: pr)
        } else if needInputGradient {
            w.qProj.applyTransposed(dy: dQ.pointer, lddy: qDim, rows: n, dx: dH.pointer, lddx: H, accumulate: false, scratch: scratch.pointer)
            w.kProj.applyTransposed(dy: dK.pointer, lddy: kvDim, rows: n, dx: dH.pointer, lddx: H, accumulate: true, scratch: scratch.pointer)
            w.vProj.applyTransposed(dy: dV.pointer, lddy: kvDim, rows: n, dx: dH.pointer, lddx: H, accumulate: true, scratch: scratch.pointer)
        }
        loraBackward(l, .q, a, x: a.xn1.pointer, ldx: H, dy: dQ.pointer, ldy: qDim, rows: n, dx: dxn, lddx: H)
        loraBackward(l, .k, a, x: a.xn1.pointer, ldx: H, dy: dK.pointer, ldy: kvDim, rows: n, dx: dxn, lddx: H)
        loraBackward(l, .v, a, x: a.xn1.pointer, ldx: H, dy: dV.pointer, ldy: kvDim, rows: n, dx: dxn, lddx: H)
        if needInputGradient {
            misalign_rmsnorm_backward(dx, dH.pointer, inputs[l].pointer, w.inputLayernorm.pointer, eps, n, H)
        }
    }

    /// The gradient reaching a block's output: the stream's (`x`) itself, or for Gemma 2, whose
    /// block output passes a norm before the residual add, its gradient through that norm (in
    /// `dBlock`).
    private func blockGradient(output: FloatBuffer?, norm: FloatBuffer?, rows n: Int) -> UnsafePointer<Float> {
        guard let output, let norm, let d = dBlock else { return UnsafePointer(x.pointer) }
        let H = config.hiddenSize
        d.pointer.update(repeating: 0, count: n * H)
        misalign_rmsnorm_backward(d.pointer, x.pointer, output.pointer, norm.pointer, Float(config.rmsNormEps), n, H)
        return UnsafePointer(d.pointer)
    }

    /// Gradients of y += scale (x A^T) B^T with t = x A^T kept from the forward:
    /// dB[out, r] += scale dy^T t, dt = scale dy B, dA[r, in] += dt^T x, dx[rows, in] += dt A.
    private func loraBackward(_ layer: Int, _ m: LoRAModule, _ a: LayerActivations, x: UnsafePointer<Float>, ldx: Int,
                              dy: UnsafePointer<Float>, ldy: Int, rows: Int, dx: UnsafeMutablePointer<Float>?, lddx: Int) {
        guard let s = parameters.slots[LoRAKey(layer: layer, module: m)] else { return }
        let p = parameters.values.pointer, g = parameters.grads.pointer, t = a.loraT[m]!.pointer
        BLAS.gemm(transA: true, m: s.out, n: s.rank, k: rows, alpha: scale, a: dy, lda: ldy, b: t, ldb: s.rank,
                  beta: 1, c: g + s.b, ldc: s.rank)
        BLAS.gemm(m: rows, n: s.rank, k: s.out, alpha: scale, a: dy, lda: ldy, b: p + s.b, ldb: s.rank, c: dT.pointer, ldc: s.rank)
        if dropout > 0 {
            // The forward's mask, regenerated: dA += dt^T dropout(x); dx += dropout(dt A).
            let seed = dropSeed(layer, m)
            misalign_dropout(dropX.pointer, x, rows, s.inDim, ldx, dropout, seed)
            BLAS.gemm(transA: true, m: s.rank, n: s.inDim, k: rows, a: dT.pointer, lda: s.rank, b: dropX.pointer, ldb: s.inDim,
                      beta: 1, c: g + s.a, ldc: s.inDim)
            if let dx {
                BLAS.gemm(m: rows, n: s.inDim, k: s.rank, a: dT.pointer, lda: s.rank, b: p + s.a, ldb: s.inDim,
                          c: dropTmp.pointer, ldc: s.inDim)
                misalign_dropout(dropTmp.pointer, dropTmp.pointer, rows, s.inDim, s.inDim, dropout, seed)
                for r in 0..<rows { misalign_add_inplace(dx + r * lddx, dropTmp.pointer + r * s.inDim, s.inDim) }
            }
            return
        }
        BLAS.gemm(transA: true, m: s.rank, n: s.inDim, k: rows, a: dT.pointer, lda: s.rank, b: x, ldb: ldx,
                  beta: 1, c: g + s.a, ldc: s.inDim)
        if let dx {
            BLAS.gemm(m: rows, n: s.inDim, k: s.rank, a: dT.pointer, lda: s.rank, b: p + s.a, ldb: s.inDim,
                      beta: 1, c: dx, ldc: lddx)
        }
    }

    /// The dropout mask seed of one module in the current micro-batch (each module has its own
    /// dropout, as PEFT gives each adapted layer its own `lora_dropout`).
    private func dropSeed(_ layer: Int, _ m: LoRAModule) -> UInt64 {
        var g = SplitMix64(seed: dropoutSeed, stream: UInt64(layer * 8 + LoRAModule.allCases.firstIndex(of: m)!))
        return g.next()
    }

    /// From dAttn (d loss / d attention output) to dQ, dK, dV (before the RoPE backward).
    private func attentionBackward(_ l: Int, _ a: LayerActivations, batch: TrainingBatch) {
        let c = config, hd = c.headDim, qDim = c.qDim, kvDim = c.kvDim
        let group = c.numAttentionHeads / c.numKeyValueHeads
        let sm = c.attentionScale
        let cap = c.gemma?.attnLogitSoftcapping.map { Float($0) }
        dK.pointer.update(repeating: 0, count: batch.rows * kvDim)
        dV.pointer.update(repeating: 0, count: batch.rows * kvDim)
        var row = 0, pOff = 0
        for T in batch.lengths {
            for h in 0..<c.numAttentionHeads {
                let g = h / group
                let P = a.probs.pointer + pOff
                let dO = dAttn.pointer + row * qDim + h * hd
                let qh = a.q.pointer + row * qDim + h * hd, kg = a.k.pointer + row * kvDim + g * hd
                let vg = a.v.pointer + row * kvDim + g * hd
                // dP[T, T] = dO V^T ; dV += P^T dO
                BLAS.gemm(transB: true, m: T, n: T, k: hd, a: dO, lda: qDim, b: vg, ldb: kvDim, c: dP.pointer, ldc: T)
                BLAS.gemm(transA: true, m: T, n: hd, k: T, a: P, lda: T, b: dO, ldb: qDim, beta: 1,
                          c: dV.pointer + row * kvDim + g * hd, ldc: kvDim)
                // dS = softmax backward; dQ = scale dS K ; dK += scale dS^T Q
                misalign_softmax_backward_rows(dP.pointer, P, T, T, T)
                if let cap, let raw = rawScores {
                    // Through the cap: recompute the scaled scores, dS *= 1 - tanh(S / cap)^2.
                    BLAS.gemm(transB: true, m: T, n: T, k: hd, alpha: sm, a: qh, lda: qDim, b: kg, ldb: kvDim, c: raw.pointer, ldc: T)
                    misalign_softcap_backward(dP.pointer, raw.pointer, T * T, cap)
                }
                BLAS.gemm(m: T, n: hd, k: T, alpha: sm, a: dP.pointer, lda: T, b: kg, ldb: kvDim,
                          c: dQ.pointer + row * qDim + h * hd, ldc: qDim)
                BLAS.gemm(transA: true, m: T, n: hd, k: T, alpha: sm, a: dP.pointer, lda: T, b: qh, ldb: qDim, beta: 1,
                          c: dK.pointer + row * kvDim + g * hd, ldc: kvDim)
                pOff += T * T
            }
            row += T
        }
    }
}
