import Foundation
import MisalignKernels

/// What one module's update `dW = s B A` measures, computed from its factors alone.
public struct LoRAUpdateMeasure: Equatable, Sendable {
    /// `||dW||_F`.
    public let norm: Double
    /// The largest singular value of `dW` (its spectral norm).
    public let sigmaMax: Double
}

/// One module's factors widened to float64: `dW = scale * B A`, `A [rank, inDim]`, `B [out, rank]`.
struct UpdateFactors {
    let rank: Int, inDim: Int, out: Int
    let scale: Double
    let a: [Double], b: [Double]

    init(_ pair: LoRAAdapter.Pair, scale: Double) {
        rank = pair.a.shape[0]; inDim = pair.a.shape[1]; out = pair.b.shape[0]
        self.scale = scale
        a = Self.widen(pair.a); b = Self.widen(pair.b)
    }

    static func widen(_ x: FloatBuffer) -> [Double] {
        let p = x.pointer
        return [Double](unsafeUninitializedCapacity: x.count) { buffer, count in
            for i in 0..<x.count { buffer[i] = Double(p[i]) }
            count = x.count
        }
    }

    /// `B^T B` and `A A^T`, both `[rank, rank]`.
    func grams() -> (bb: [Double], aa: [Double]) {
        var bb = [Double](repeating: 0, count: rank * rank), aa = bb
        b.withUnsafeBufferPointer { bp in bb.withUnsafeMutableBufferPointer { cp in
            BLAS.syrk(trans: true, n: rank, k: out, a: bp.baseAddress!, lda: rank, c: cp.baseAddress!, ldc: rank)
        } }
        a.withUnsafeBufferPointer { ap in aa.withUnsafeMutableBufferPointer { cp in
            BLAS.syrk(n: rank, k: inDim, a: ap.baseAddress!, lda: inDim, c: cp.baseAddress!, ldc: rank)
        } }
        return (bb, aa)
    }

    /// `<dW, dW>_F = s^2 trace((B^T B)(A A^T))` and `sigma_max(dW)^2 = s^2 lambda_max((B^T B)(A A^T))`.
    func selfProducts() -> (normSquared: Double, sigmaMaxSquared: Double) {
        let (bb, aa) = grams()
        let s2 = scale * scale
        return (s2 * Self.frobeniusInner(bb, aa), s2 * SmallSymmetric.largestEigenvalueOfProduct(bb, aa, n: rank))
    }

    /// `<dW_x, dW_y>_F = s_x s_y trace(B_x A_x A_y^T B_y^T) = s_x s_y sum((B_x^T B_y) .* (A_x A_y^T))`,
    /// both factors `[r_x, r_y]`: the ranks may differ. `x` and `y` update the same `[out, in]` weight.
    func inner(_ y: UpdateFactors) -> Double {
        precondition(out == y.out && inDim == y.inDim, "inner: updates of different shapes")
        var p = [Double](repeating: 0, count: rank * y.rank), q = p
        b.withUnsafeBufferPointer { bx in y.b.withUnsafeBufferPointer { by in p.withUnsafeMutableBufferPointer { pp in
            BLAS.gemm(transA: true, m: rank, n: y.rank, k: out, a: bx.baseAddress!, lda: rank,
                      b: by.baseAddress!, ldb: y.rank, c: pp.baseAddress!, ldc: y.rank)
        } } }
        a.withUnsafeBufferPointer { ax in y.a.withUnsafeBufferPointer { ay in q.withUnsafeMutableBufferPointer { qp in
            BLAS.gemm(transB: true, m: rank, n: y.rank, k: inDim, a: ax.baseAddress!, lda: inDim,
                      b: ay.baseAddress!, ldb: inDim, c: qp.baseAddress!, ldc: y.rank)
        } } }
        return scale * y.scale * Self.frobeniusInner(p, q)
    }

    /// `sum(x .* y)`, with a compensated (Neumaier) sum so the r^2 terms add no rounding of their own.
    static func frobeniusInner(_ x: [Double], _ y: [Double]) -> Double {
        var sum = 0.0, c = 0.0
        for i in x.indices {
            let v = x[i] * y[i], t = sum + v
            c += abs(sum) >= abs(v) ? (sum - t) + v : (v - t) + sum
            sum = t
        }
        return sum + c
    }
}

extension LoRAAdapter {
    /// The factor of `B A` in the update, in float64: `lora_alpha / r`, or `lora_alpha / sqrt(r)`
    /// with rsLoRA (`use_rslora`), as PEFT computes it. (`config.scale` is its float32 rounding,
    /// the one the model applies.)
    public var updateScale: Double {
        config.useRSLoRA ? config.alpha / Double(config.rank).squareRoot() : config.alpha / Double(config.rank)
    }

    /// The name errors use for this adapter: its folder, else `fallback`.
    func checkpointLabel(_ fallback: String) -> String { path ?? fallback }

    /// The float64 factors of `key`'s update, checked: the pair exists, multiplies and is finite.
    func updateFactors(_ key: LoRAKey, label: String) throws(AdapterDynamicsError) -> UpdateFactors {
        guard let pair = pairs[key] else {
            throw .moduleMissing(checkpoint: label, module: key.peftPrefix)
        }
        guard pair.a.shape.count == 2, pair.b.shape.count == 2, pair.a.shape[0] >= 1, pair.b.shape[1] == pair.a.shape[0] else {
            throw .factorsDoNotMultiply(checkpoint: label, module: key.peftPrefix, a: pair.a.shape, b: pair.b.shape)
        }
        return UpdateFactors(pair, scale: updateScale)
    }

    /// `||dW||_F` and `sigma_max(dW)` of `key`'s update `dW = s B A`, from the `[r, r]` Gram
    /// matrices `B^T B` and `A A^T` (Docs/AdapterDynamics.md), never forming `dW`.
    public func updateMeasure(_ key: LoRAKey) throws(AdapterDynamicsError) -> LoRAUpdateMeasure {
        let label = checkpointLabel("the adapter")
        let f = try updateFactors(key, label: label)
        let (n2, s2) = f.selfProducts()
        guard n2.isFinite, s2.isFinite else { throw .nonFinite(checkpoint: label, module: key.peftPrefix) }
        return LoRAUpdateMeasure(norm: n2.squareRoot(), sigmaMax: s2.squareRoot())
    }

    /// The Frobenius inner product `<dW_self, dW_other>_F` of the two adapters' updates of `key`,
    /// `s_1 s_2 trace((B_1^T B_2)(A_2 A_1^T))`, whatever the two ranks; never forms either update.
    public func updateInnerProduct(with other: LoRAAdapter, at key: LoRAKey) throws(AdapterDynamicsError) -> Double {
        let label = checkpointLabel("the adapter"), otherLabel = other.checkpointLabel("the other adapter")
        let x = try updateFactors(key, label: label)
        guard other.pairs[key] != nil else {
            throw .moduleSetChanged(checkpoint: label, other: otherLabel, module: key.peftPrefix, inCheckpoint: true)
        }
        let y = try other.updateFactors(key, label: otherLabel)
        guard x.out == y.out, x.inDim == y.inDim else {
            throw .shapeChanged(checkpoint: label, other: otherLabel, module: key.peftPrefix, shape: [x.out, x.inDim], otherShape: [y.out, y.inDim])
        }
        let v = x.inner(y)
        guard v.isFinite else {
            let bad = x.inner(x).isFinite ? otherLabel : label
            throw .nonFinite(checkpoint: bad, module: key.peftPrefix)
        }
        return v
    }
}
