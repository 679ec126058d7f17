import CMisalignKernels

extension LinearWeight {
    /// dx[m, in] (+)= dy[m, out] W[out, in]: the input gradient of `apply`. The weight is frozen,
    /// so this is the only product the backward pass needs from it. bf16/f16 weights are widened
    /// a block of output rows at a time, each block adding its share of the sum over `out`.
    /// `scratch` must hold `scratchCount` floats.
    public func applyTransposed(dy: UnsafePointer<Float>, lddy: Int, rows m: Int, dx: UnsafeMutablePointer<Float>, lddx: Int,
                                accumulate: Bool, scratch: UnsafeMutablePointer<Float>) {
        switch storage {
        case .f32(let w):
            BLAS.gemm(m: m, n: inDim, k: out, a: dy, lda: lddy, b: w, ldb: inDim,
                      beta: accumulate ? 1 : 0, c: dx, ldc: lddx)
        case .bf16(let w), .f16(let w):
            let isBF16: Int32 = if case .bf16 = storage { 1 } else { 0 }
            var r0 = 0
            while r0 < out {
                let rows = min(Self.blockRows, out - r0)
                misalign_widen_rows(scratch, w + r0 * inDim, rows, inDim, isBF16)
                BLAS.gemm(m: m, n: inDim, k: rows, a: dy + r0, lda: lddy, b: scratch, ldb: inDim,
                          beta: (accumulate || r0 > 0) ? 1 : 0, c: dx, ldc: lddx)
                r0 += rows
            }
        }
    }
}
