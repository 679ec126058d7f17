import CMisalignKernels
import MisalignKernels

extension LinearWeight {
    /// Rows of a bf16/f16 W widened per block in training products. Training multiplies hundreds
    /// of rows, so blocks of ~4M floats (16 MB) keep every sgemm large in all three dimensions;
    /// the 64-row blocks of `apply` would make `applyTransposed` a rank-64 update re-reading dX
    /// hundreds of times per projection.
    public var trainingBlockRows: Int { max(Self.blockRows, min(out, (4 << 20) / max(inDim, 1))) }

    /// Floats of scratch `applyWide` and `applyTransposed` need (0 for f32 weights).
    public var trainingScratchCount: Int {
        if case .f32 = storage { return 0 }
        return trainingBlockRows * inDim
    }

    /// y[m, out] (+)= x[m, in] W^T: f32 and bf16 weights on the packed kernel where the CPU has
    /// AVX-512 and the rows fill its blocks (`packedFits`; unless `blockRows` asks for the
    /// widened blocks), else sgemm, widening bf16/f16 W in `trainingBlockRows` blocks. With
    /// `precision: .bf16` and bf16 storage, `apply`'s bf16 products instead (`ComputePrecision`).
    public func applyWide(x: UnsafePointer<Float>, ldx: Int, rows m: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
                          accumulate: Bool = false, scratch: UnsafeMutablePointer<Float>, blockRows: Int? = nil,
                          precision: ComputePrecision = .f32) {
        if precision == .bf16, dtype == .bf16 {
            apply(x: x, ldx: ldx, rows: m, y: y, ldy: ldy, accumulate: accumulate, scratch: scratch, blockRows: blockRows, precision: .bf16)
            return
        }
        if blockRows == nil, runPacked(x: x, ldx: ldx, rows: m, y: y, ldy: ldy, accumulate: accumulate) { return }
        forEachBlock(blockRows ?? trainingBlockRows, scratch: scratch) { r0, rows, w in
            BLAS.gemm(transB: true, m: m, n: rows, k: inDim, a: x, lda: ldx, b: w, ldb: inDim,
                      beta: accumulate ? 1 : 0, c: y + r0, ldc: ldy)
        }
    }

    /// dx[m, in] (+)= dy[m, out] W[out, in]: the input gradient of `apply`. The weight is frozen,
    /// so this is the only product the backward pass needs from it; each widened block of rows
    /// of W adds its share of the sum over `out`. With `precision: .bf16` and bf16 storage, dy is
    /// rounded to bf16 and multiplied on the bf16 dot kernel (`misalign_matmul_bf16_dot_nn`)
    /// where the CPU has AVX512_BF16, else the rounded dy takes the f32 path (same values up to
    /// summation order).
    public func applyTransposed(dy: UnsafePointer<Float>, lddy: Int, rows m: Int, dx: UnsafeMutablePointer<Float>, lddx: Int,
                                accumulate: Bool, scratch: UnsafeMutablePointer<Float>, blockRows: Int? = nil,
                                precision: ComputePrecision = .f32) {
        if precision == .bf16, dtype == .bf16 {
            Self.applyTransposed(group: [TransposedProduct(weight: self, dy: dy, lddy: lddy)], rows: m, dx: dx, lddx: lddx,
                                 accumulate: accumulate, scratch: scratch, precision: .bf16)
            return
        }
        forEachBlock(blockRows ?? trainingBlockRows, scratch: scratch) { r0, rows, w in
            BLAS.gemm(m: m, n: inDim, k: rows, a: dy + r0, lda: lddy, b: w, ldb: inDim,
                      beta: (accumulate || r0 > 0) ? 1 : 0, c: dx, ldc: lddx)
        }
    }

    /// One term of a sum of input gradients into one dx: `dy W` for this weight.
    public struct TransposedProduct {
        public var weight: LinearWeight
        public var dy: UnsafePointer<Float>
        public var lddy: Int
        public init(weight: LinearWeight, dy: UnsafePointer<Float>, lddy: Int) {
            self.weight = weight; self.dy = dy; self.lddy = lddy
        }
    }

    /// dx[m, in] (+)= sum over the group of dy W: the input gradient of products that shared their
    /// input (q, k and v). With `precision: .bf16` and bf16 weights of one `inDim` on a CPU with
    /// AVX512_BF16, one job on the bf16 dot kernel, each result one chain over the terms in
    /// order; otherwise the terms one after another through `applyTransposed` (bf16 ones with dy
    /// rounded first).
    public static func applyTransposed(group: [TransposedProduct], rows m: Int, dx: UnsafeMutablePointer<Float>, lddx: Int,
                                       accumulate: Bool, scratch: UnsafeMutablePointer<Float>, precision: ComputePrecision = .f32) {
        guard let first = group.first else { return }
        let inDim = first.weight.inDim
        if precision == .bf16, group.count <= 8, group.allSatisfy({ $0.weight.dtype == .bf16 && $0.weight.inDim == inDim }) {
            let terms = group.map { p in
                misalign_nn_term(a: p.dy, lda: p.lddy, w: p.weight.rawPointer.assumingMemoryBound(to: UInt16.self), ldw: inDim, k: p.weight.out)
            }
            let threads = threads(forElements: group.reduce(0) { $0 + $1.weight.out } * inDim)
            let done = terms.withUnsafeBufferPointer {
                misalign_matmul_bf16_dot_nn_group(dx, lddx, $0.baseAddress, $0.count, m, inDim, accumulate ? 1 : 0, threads) == 1
            }
            if done { return }
        }
        for (i, p) in group.enumerated() {
            let acc = accumulate || i > 0
            if precision == .bf16, p.weight.dtype == .bf16 {
                // No AVX512_BF16: the rounded dy through the f32 path.
                let rounded = FloatBuffer(shape: [m, p.weight.out], zeroed: false)
                for r in 0..<m { misalign_round_to_bf16(rounded.pointer + r * p.weight.out, p.dy + r * p.lddy, p.weight.out) }
                p.weight.applyTransposed(dy: rounded.pointer, lddy: p.weight.out, rows: m, dx: dx, lddx: lddx, accumulate: acc, scratch: scratch)
            } else {
                p.weight.applyTransposed(dy: p.dy, lddy: p.lddy, rows: m, dx: dx, lddx: lddx, accumulate: acc, scratch: scratch)
            }
        }
    }

    /// Calls `body(firstRow, rows, W[firstRow..., :] as f32)` over W: once for f32 storage,
    /// block by block (widened into `scratch`, `block * inDim` floats) for bf16/f16.
    private func forEachBlock(_ block: Int, scratch: UnsafeMutablePointer<Float>, _ body: (Int, Int, UnsafePointer<Float>) -> Void) {
        switch storage {
        case .f32(let w): body(0, out, w)
        case .bf16(let w), .f16(let w):
            let isBF16: Int32 = if case .bf16 = storage { 1 } else { 0 }
            var r0 = 0
            while r0 < out {
                let rows = min(block, out - r0)
                misalign_widen_rows(scratch, w + r0 * inDim, rows, inDim, isBF16)
                body(r0, rows, scratch)
                r0 += rows
            }
        }
    }
}
