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
    /// widened blocks), else sgemm, widening bf16/f16 W in `trainingBlockRows` blocks.
    public func applyWide(x: UnsafePointer<Float>, ldx: Int, rows m: Int, y: UnsafeMutablePointer<Float>, ldy: Int,
                          accumulate: Bool = false, scratch: UnsafeMutablePointer<Float>, blockRows: Int? = nil) {
        if blockRows == nil, runPacked(x: x, ldx: ldx, rows: m, y: y, ldy: ldy, accumulate: accumulate) { return }
        forEachBlock(blockRows ?? trainingBlockRows, scratch: scratch) { r0, rows, w in
            BLAS.gemm(transB: true, m: m, n: rows, k: inDim, a: x, lda: ldx, b: w, ldb: inDim,
                      beta: accumulate ? 1 : 0, c: y + r0, ldc: ldy)
        }
    }

    /// dx[m, in] (+)= dy[m, out] W[out, in]: the input gradient of `apply`. The weight is frozen,
    /// so this is the only product the backward pass needs from it; each widened block of rows
    /// of W adds its share of the sum over `out`.
    public func applyTransposed(dy: UnsafePointer<Float>, lddy: Int, rows m: Int, dx: UnsafeMutablePointer<Float>, lddx: Int,
                                accumulate: Bool, scratch: UnsafeMutablePointer<Float>, blockRows: Int? = nil) {
        forEachBlock(blockRows ?? trainingBlockRows, scratch: scratch) { r0, rows, w in
            BLAS.gemm(m: m, n: inDim, k: rows, a: dy + r0, lda: lddy, b: w, ldb: inDim,
                      beta: (accumulate || r0 > 0) ? 1 : 0, c: dx, ldc: lddx)
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
