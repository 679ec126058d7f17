import Foundation
import MisalignKernels

/// What one module's update `dW = s B A` measures, computed from its factors alone.
public struct LoRAUpdateMeasure: Equatable, Sendable {
    /// `||dW||_F`.
    public let norm: Double
    /// The largest singular value of `dW` (its spectral norm).
    public let sigmaMax: Double
}

/// Float64 buffers for a slice of the stacked factors, and the Gram blocks accumulated over the
/// slices. A slice holds `chunkElements` values (2 MB), so it stays in cache between its
/// widening and the products that read it: the factors are read as float32 and never written
/// out whole in float64 (the three adapters a 7B checkpoint compares would be 2 GB).
struct GramWorkspace {
    static let chunkElements = 1 << 18
    var stackedB: [Double] = []  // [rows, R]: rows of B_0 | B_1 | ... side by side
    var stackedA: [Double] = []  // [R, columns]: columns of A_0 ; A_1 ; ... one below the other
    var gramB: [Double] = []     // [r_0, R] = B_0^T [B_0 | B_1 | ...]
    var gramA: [Double] = []     // [r_0, R] = A_0 [A_0; A_1; ...]^T

    static func fit(_ buffer: inout [Double], _ count: Int) {
        if buffer.count < count { buffer = [Double](repeating: 0, count: count) }
    }
}

/// The float64 Gram products of one module's update `dW_0 = s_0 B_0 A_0` with itself and with
/// updates `dW_j = s_j B_j A_j` (j >= 1) of the same `[out, in]` weight, whatever their ranks,
/// never forming an update:
///
///     <dW_0, dW_j>_F = s_0 s_j trace(B_0 A_0 A_j^T B_j^T) = s_0 s_j sum((B_0^T B_j) .* (A_0 A_j^T))
///
/// All of them come from the stacked factors, `B_0^T [B_0 | B_1 | ...]` and `A_0 [A_0; A_1; ...]^T`
/// (`dsyrk` for the self blocks, `dgemm` for the others), summed over slices of the long
/// dimension (`out` for B, `in` for A) that are widened from float32 to float64 (exactly) one
/// at a time.
struct UpdateProducts {
    let rank: Int
    /// `B_0^T B_0` and `A_0 A_0^T`, `[rank, rank]`.
    let bb: [Double], aa: [Double]
    /// `<dW_0, dW_j>_F`; `inner[0] = ||dW_0||_F^2`.
    let inner: [Double]
    /// `s_0 ||B_0||_F ||A_0||_F`: the size the products' rounding scales with.
    let magnitude: Double
    let scale: Double

    /// `factors[0]` is `dW_0`; every pair is checked (2-D, multiplying, same `[out, in]`) by the caller.
    /// `slice`: rows of B and columns of A per slice (default: `chunkElements` values per slice).
    init(_ factors: [(pair: LoRAAdapter.Pair, scale: Double)], workspace w: inout GramWorkspace, slice: Int? = nil) {
        let out = factors[0].pair.b.shape[0], inDim = factors[0].pair.a.shape[1]
        let ranks = factors.map(\.pair.rank), total = ranks.reduce(0, +), r0 = ranks[0], rest = total - r0
        let slice = max(1, slice ?? GramWorkspace.chunkElements / total)
        GramWorkspace.fit(&w.stackedB, slice * total); GramWorkspace.fit(&w.stackedA, total * slice)
        GramWorkspace.fit(&w.gramB, r0 * total); GramWorkspace.fit(&w.gramA, r0 * total)
        w.stackedB.withUnsafeMutableBufferPointer { sbBuffer in w.gramB.withUnsafeMutableBufferPointer { gbBuffer in
            let sb = sbBuffer.baseAddress!, gb = gbBuffer.baseAddress!
            for first in stride(from: 0, to: out, by: slice) {
                let rows = min(slice, out - first), beta: Double = first == 0 ? 0 : 1
                var column = 0
                for (pair, _) in factors {
                    let r = pair.rank, b = pair.b.pointer + first * r
                    for o in 0..<rows {
                        let source = b + o * r, target = sb + (o * total + column)
                        for j in 0..<r { target[j] = Double(source[j]) }
                    }
                    column += r
                }
                BLAS.syrk(trans: true, n: r0, k: rows, a: sb, lda: total, beta: beta, c: gb, ldc: total)
                if rest > 0 {
                    BLAS.gemm(transA: true, m: r0, n: rest, k: rows, a: sb, lda: total,
                              b: sb + r0, ldb: total, beta: beta, c: gb + r0, ldc: total)
                }
            }
        } }
        w.stackedA.withUnsafeMutableBufferPointer { saBuffer in w.gramA.withUnsafeMutableBufferPointer { gaBuffer in
            let sa = saBuffer.baseAddress!, ga = gaBuffer.baseAddress!
            for first in stride(from: 0, to: inDim, by: slice) {
                let columns = min(slice, inDim - first), beta: Double = first == 0 ? 0 : 1
                var row = 0
                for (pair, _) in factors {
                    for p in 0..<pair.rank {
                        let source = pair.a.pointer + (p * inDim + first), target = sa + (row + p) * columns
                        for i in 0..<columns { target[i] = Double(source[i]) }
                    }
                    row += pair.rank
                }
                BLAS.syrk(n: r0, k: columns, a: sa, lda: columns, beta: beta, c: ga, ldc: total)
                if rest > 0 {
                    BLAS.gemm(transB: true, m: r0, n: rest, k: columns, a: sa, lda: columns,
                              b: sa + r0 * columns, ldb: columns, beta: beta, c: ga + r0, ldc: total)
                }
            }
        } }
        // The [r0, r0] self blocks, made exactly symmetric.
        var bb = [Double](repeating: 0, count: r0 * r0), aa = bb
        for i in 0..<r0 { for j in 0..<r0 {
            bb[i * r0 + j] = (w.gramB[i * total + j] + w.gramB[j * total + i]) / 2
            aa[i * r0 + j] = (w.gramA[i * total + j] + w.gramA[j * total + i]) / 2
        } }
        var inner: [Double] = [], column = 0
        for (pair, scale) in factors {
            var sum = 0.0, c = 0.0  // Neumaier: the r0 r_j terms add no rounding of their own
            for i in 0..<r0 { for j in column..<(column + pair.rank) {
                let v = w.gramB[i * total + j] * w.gramA[i * total + j], t = sum + v
                c += abs(sum) >= abs(v) ? (sum - t) + v : (v - t) + sum
                sum = t
            } }
            inner.append(factors[0].scale * scale * (sum + c))
            column += pair.rank
        }
        rank = r0; self.bb = bb; self.aa = aa; self.inner = inner; self.scale = factors[0].scale
        let traces = (0..<r0).reduce(0.0) { $0 + bb[$1 * r0 + $1] } * (0..<r0).reduce(0.0) { $0 + aa[$1 * r0 + $1] }
        magnitude = abs(scale) * traces.squareRoot()
    }

    /// `sigma_max(dW_0)^2 = s_0^2 lambda_max((B_0^T B_0)(A_0 A_0^T))`.
    var sigmaMaxSquared: Double { scale * scale * SmallSymmetric.largestEigenvalueOfProduct(bb, aa, n: rank) }
}

extension LoRAAdapter {
    /// The factor of `B A` in the update, in float64: `lora_alpha / r`, or `lora_alpha / sqrt(r)`
    /// with rsLoRA (`use_rslora`), as PEFT computes it. (`config.scale` is its float32 rounding,
    /// the one the model applies.)
    public var updateScale: Double {
        config.useRSLoRA ? config.alpha / Double(config.rank).squareRoot() : config.alpha / Double(config.rank)
    }

    /// `key`'s pair, checked: it exists and its factors multiply.
    func checkedPair(_ key: LoRAKey, label: String) throws(AdapterDynamicsError) -> Pair {
        guard let pair = pairs[key] else { throw .moduleMissing(checkpoint: label, module: key.peftPrefix) }
        guard pair.a.shape.count == 2, pair.b.shape.count == 2, pair.a.shape[0] >= 1, pair.b.shape[1] == pair.a.shape[0],
              pair.a.shape[1] >= 1, pair.b.shape[0] >= 1 else {
            throw .factorsDoNotMultiply(checkpoint: label, module: key.peftPrefix, a: pair.a.shape, b: pair.b.shape)
        }
        return pair
    }

    /// `||dW||_F` and `sigma_max(dW)` of `key`'s update `dW = s B A`, from the `[r, r]` Gram
    /// matrices `B^T B` and `A A^T` (Docs/AdapterDynamics.md), never forming `dW`.
    public func updateMeasure(_ key: LoRAKey) throws(AdapterDynamicsError) -> LoRAUpdateMeasure {
        let label = path ?? "the adapter"
        var workspace = GramWorkspace()
        let p = UpdateProducts([(try checkedPair(key, label: label), updateScale)], workspace: &workspace)
        guard p.inner[0].isFinite else { throw .nonFinite(checkpoint: label, module: key.peftPrefix) }
        return LoRAUpdateMeasure(norm: p.inner[0].squareRoot(), sigmaMax: p.sigmaMaxSquared.squareRoot())
    }

    /// The Frobenius inner product `<dW_self, dW_other>_F` of the two adapters' updates of `key`,
    /// `s_1 s_2 trace((B_1^T B_2)(A_2 A_1^T))`, whatever the two ranks; never forms either update.
    public func updateInnerProduct(with other: LoRAAdapter, at key: LoRAKey) throws(AdapterDynamicsError) -> Double {
        let label = path ?? "the adapter", otherLabel = other.path ?? "the other adapter"
        let x = try checkedPair(key, label: label)
        guard other.pairs[key] != nil else {
            throw .moduleSetChanged(checkpoint: label, other: otherLabel, module: key.peftPrefix, inCheckpoint: true)
        }
        let y = try other.checkedPair(key, label: otherLabel)
        guard x.b.shape[0] == y.b.shape[0], x.a.shape[1] == y.a.shape[1] else {
            throw .shapeChanged(checkpoint: label, other: otherLabel, module: key.peftPrefix,
                                shape: [x.b.shape[0], x.a.shape[1]], otherShape: [y.b.shape[0], y.a.shape[1]])
        }
        var workspace = GramWorkspace()
        let p = UpdateProducts([(x, updateScale), (y, other.updateScale)], workspace: &workspace)
        guard p.inner[0].isFinite else { throw .nonFinite(checkpoint: label, module: key.peftPrefix) }
        guard p.inner[1].isFinite else { throw .nonFinite(checkpoint: otherLabel, module: key.peftPrefix) }
        return p.inner[1]
    }
}
