import CBLAS

/// General matrix products: `cblas_sgemm` from OpenBLAS, row-major. (The weights' products of
/// the model go through `LinearWeight`, which picks its own kernels first.)
///
/// Sizes are Swift `Int`s, checked once here and converted to BLAS's 32-bit ints, so no caller
/// repeats the conversions or can pass a size that silently wraps.
public enum BLAS {
    /// Threads OpenBLAS uses for each call. Set it once at start-up: our own parallel loops
    /// never run while BLAS does, so the two never oversubscribe the cores.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// The kernel family OpenBLAS chose for this CPU (e.g. "Haswell", "Cooperlake"); it is set
    /// at load time by `OPENBLAS_CORETYPE` or auto-detection.
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// `C = alpha * op(A) * op(B) + beta * C`, row-major, where `op(X)` is `X` or its transpose.
    ///
    /// - op(A) is `[m, k]`, op(B) is `[k, n]`, C is `[m, n]`.
    /// - `lda`, `ldb`, `ldc` are the row strides of A, B and C as stored (so A stored `[m, k]`
    ///   has `lda >= k`, stored `[k, m]` for `transA` has `lda >= m`).
    /// - `beta = 0` overwrites C (NaNs in C are not propagated); `beta = 1` accumulates.
    @inline(__always)
    public static func gemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        checkGemm(transA: transA, transB: transB, m: m, n: n, k: k, lda: lda, ldb: ldb, ldc: ldc)
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }

    /// `c = alpha * op(a) * op(b) + beta * c` on views seen as matrices (`[rows, cols]`),
    /// with every shape checked against the others.
    public static func gemm(
        _ a: TensorView, transA: Bool = false,
        _ b: TensorView, transB: Bool = false,
        into c: TensorView, alpha: Float = 1, beta: Float = 0
    ) {
        let (m, ka) = transA ? (a.cols, a.rows) : (a.rows, a.cols)
        let (kb, n) = transB ? (b.cols, b.rows) : (b.rows, b.cols)
        precondition(ka == kb, "gemm: inner dimensions differ (\(a.shape) x \(b.shape))")
        precondition(c.rows == m && c.cols == n, "gemm: output \(c.shape) is not [\(m), \(n)]")
        gemm(transA: transA, transB: transB, m: m, n: n, k: ka, alpha: alpha,
             a: a.pointer, lda: a.cols, b: b.pointer, ldb: b.cols, beta: beta, c: c.pointer, ldc: c.cols)
    }
}

extension BLAS {
    /// The sizes and strides every `gemm` (float32 and float64) checks before calling BLAS.
    @inline(__always)
    static func checkGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, lda: Int, ldb: Int, ldc: Int) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m=\(m) n=\(n) k=\(k)")
        precondition(lda >= max(1, transA ? m : k), "gemm: lda=\(lda) too small")
        precondition(ldb >= max(1, transB ? k : n), "gemm: ldb=\(ldb) too small")
        precondition(ldc >= max(1, n), "gemm: ldc=\(ldc) too small")
        let limit = Int(Int32.max)
        precondition(m <= limit && n <= limit && k <= limit && lda <= limit && ldb <= limit && ldc <= limit,
                     "gemm: size beyond BLAS's 32-bit range")
    }
}
