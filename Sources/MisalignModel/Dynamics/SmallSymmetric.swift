import Foundation
import MisalignKernels

/// Symmetric positive-semidefinite matrices of an adapter's rank (a few to a few hundred rows),
/// row-major in float64: the small factorisations adapter dynamics needs, without LAPACK.
package enum SmallSymmetric {
    /// The largest eigenvalue of `g h`, for symmetric positive-semidefinite `g` and `h` `[n, n]`.
    ///
    /// `g h` is not symmetric, but with `h = L L^T` (pivoted Cholesky, `L [n, k]`) its nonzero
    /// eigenvalues are those of the symmetric positive-semidefinite `L^T g L [k, k]`, whose
    /// eigenvalues Jacobi's method finds to within float64 rounding of its norm. The error is a
    /// small multiple of `n eps ||g|| ||h||`, whether or not `g` or `h` is singular (a zero
    /// lora_B): a few ulps of the result unless the two are nearly orthogonal to each other.
    package static func largestEigenvalueOfProduct(_ g: [Double], _ h: [Double], n: Int) -> Double {
        precondition(g.count == n * n && h.count == n * n, "largestEigenvalueOfProduct: not [\(n), \(n)]")
        let (l, k) = pivotedCholesky(h, n: n)
        if k == 0 { return 0 }
        // gl = g L [n, k], then c = L^T gl [k, k].
        var gl = [Double](repeating: 0, count: n * k)
        var c = [Double](repeating: 0, count: k * k)
        g.withUnsafeBufferPointer { gp in l.withUnsafeBufferPointer { lp in
            gl.withUnsafeMutableBufferPointer { glp in
                BLAS.gemm(m: n, n: k, k: n, a: gp.baseAddress!, lda: n, b: lp.baseAddress!, ldb: k, c: glp.baseAddress!, ldc: k)
            }
            gl.withUnsafeBufferPointer { glp in c.withUnsafeMutableBufferPointer { cp in
                BLAS.gemm(transA: true, m: k, n: k, k: n, a: lp.baseAddress!, lda: k, b: glp.baseAddress!, ldb: k, c: cp.baseAddress!, ldc: k)
            } }
        } }
        // Symmetric up to rounding; make it exactly so for Jacobi.
        for i in 0..<k { for j in 0..<i { let m = (c[i * k + j] + c[j * k + i]) / 2; c[i * k + j] = m; c[j * k + i] = m } }
        return max(0, eigenvalues(c, n: k).first ?? 0)
    }

    /// Pivoted (diagonal pivoting) Cholesky of a symmetric positive-semidefinite `h [n, n]`:
    /// `L [n, k]` (row-major, rows in `h`'s order) with `h = L L^T` up to the `k` pivots taken,
    /// stopping when every remaining diagonal entry is at most `n * eps * max(diag(h))`, which
    /// is how it handles a singular `h` (LAPACK's `dpstrf` rule).
    package static func pivotedCholesky(_ h: [Double], n: Int) -> (l: [Double], rank: Int) {
        precondition(h.count == n * n, "pivotedCholesky: not [\(n), \(n)]")
        var d = (0..<n).map { h[$0 * n + $0] }
        let tolerance = Double(n) * Double.ulpOfOne * max(0, d.max() ?? 0)
        var chosen = [Bool](repeating: false, count: n)
        var full = [Double](repeating: 0, count: n * n)  // [n, n], the first k columns used
        var k = 0
        while k < n {
            var p = -1, best = tolerance
            for i in 0..<n where !chosen[i] && d[i] > best { best = d[i]; p = i }
            if p < 0 { break }
            chosen[p] = true
            let pivot = d[p].squareRoot()
            full[p * n + k] = pivot
            for i in 0..<n where !chosen[i] {
                var s = h[i * n + p]
                for m in 0..<k { s -= full[i * n + m] * full[p * n + m] }
                let v = s / pivot
                full[i * n + k] = v
                d[i] -= v * v
            }
            k += 1
        }
        var l = [Double](repeating: 0, count: n * k)
        for i in 0..<n { for j in 0..<k { l[i * k + j] = full[i * n + j] } }
        return (l, k)
    }

    /// The eigenvalues of a symmetric `a [n, n]`, largest first, by cyclic Jacobi rotations
    /// until the off-diagonal part is below float64 rounding of the diagonal.
    package static func eigenvalues(_ matrix: [Double], n: Int) -> [Double] {
        precondition(matrix.count == n * n, "eigenvalues: not [\(n), \(n)]")
        var copy = matrix
        copy.withUnsafeMutableBufferPointer { a in
            for sweep in 0..<64 {
                var off = 0.0, diagonal = 0.0
                for p in 0..<n {
                    diagonal += a[p * n + p] * a[p * n + p]
                    for q in (p + 1)..<n { off += a[p * n + q] * a[p * n + q] }
                }
                if off == 0 || off <= Double.ulpOfOne * Double.ulpOfOne * diagonal * 1e-4 { break }
                for p in 0..<n {
                    for q in (p + 1)..<n {
                        let apq = a[p * n + q]
                        if apq == 0 { continue }
                        let app = a[p * n + p], aqq = a[q * n + q]
                        // After a few sweeps an element far below both diagonal entries is rounding: drop it.
                        let g = 100 * abs(apq)
                        if sweep > 3 && abs(app) + g == abs(app) && abs(aqq) + g == abs(aqq) {
                            a[p * n + q] = 0; a[q * n + p] = 0; continue
                        }
                        let theta = (aqq - app) / (2 * apq)
                        let t = abs(theta) > 1e150 ? 1 / (2 * theta)
                            : (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                        let c = 1 / (t * t + 1).squareRoot(), s = t * c
                        a[p * n + p] = app - t * apq
                        a[q * n + q] = aqq + t * apq
                        a[p * n + q] = 0; a[q * n + p] = 0
                        // Rows p and q (the matrix is kept symmetric: columns mirror them).
                        for r in 0..<n where r != p && r != q {
                            let arp = a[p * n + r], arq = a[q * n + r]
                            let np = c * arp - s * arq, nq = s * arp + c * arq
                            a[p * n + r] = np; a[r * n + p] = np
                            a[q * n + r] = nq; a[r * n + q] = nq
                        }
                    }
                }
            }
        }
        return (0..<n).map { copy[$0 * n + $0] }.sorted(by: >)
    }
}
