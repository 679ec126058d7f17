import CBLAS

/// Float64 products (`cblas_dgemm`, `cblas_dsyrk`), for results that must be exact to float64
/// rounding, such as adapter dynamics' Gram matrices; never in the model's hot paths. Same
/// conventions and checks as the float32 `gemm`: row-major, sizes checked once here.
extension BLAS {
    /// `C = alpha * op(A) * op(B) + beta * C` in float64; op(A) is `[m, k]`, op(B) `[k, n]`, C `[m, n]`.
    package static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Double = 1,
        a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double = 0,
        c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        checkGemm(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        if m == 0 || n == 0 { return }
        cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `C = alpha * op(A) * op(A)^T + beta * C` in float64 for a symmetric `C [n, n]`, with
    /// op(A) `[n, k]` (`trans`: A stored `[k, n]`). Both triangles of C are filled on return.
    package static func syrk(
        trans: Bool = false, n: Int, k: Int, alpha: Double = 1,
        a: UnsafePointer<Double>, lda: Int, beta: Double = 0,
        c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        precondition(n >= 0 && k >= 0, "syrk: negative size n=\(n) k=\(k)")
        precondition(lda >= max(1, trans ? n : k), "syrk: lda=\(lda) too small")
        precondition(ldc >= max(1, n), "syrk: ldc=\(ldc) too small")
        let limit = Int(Int32.max)
        precondition(n <= limit && k <= limit && lda <= limit && ldc <= limit, "syrk: size beyond BLAS's 32-bit range")
        if n == 0 { return }
        cblas_dsyrk(CblasRowMajor, CblasUpper, trans ? CblasTrans : CblasNoTrans,
                    Int32(n), Int32(k), alpha, a, Int32(lda), beta, c, Int32(ldc))
        for i in 0..<n { for j in 0..<i { c[i * ldc + j] = c[j * ldc + i] } }
    }
}
