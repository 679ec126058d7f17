import Testing
import Foundation
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// Our `gemm` entry point against a float64 triple loop, for every transpose combination,
/// padded leading dimensions, and alpha/beta accumulation.
@Suite struct GemmTests {
    /// Reference: C = alpha * op(A) op(B) + beta * C in Double.
    func reference(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int,
                   b: [Float], ldb: Int, beta: Float, c: [Float], ldc: Int) -> [Double] {
        var out = c.map(Double.init)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                out[i * ldc + j] = Double(alpha) * s + Double(beta) * Double(c[i * ldc + j])
            }
        }
        return out
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matchesFloat64Reference(transA: Bool, transB: Bool) {
        var rng = TestRNG(seed: 42)
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 33, 64), (64, 96, 130), (1, 300, 257)] {
            for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25)] {
                let pad = 3
                let lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad
                let a = rng.floats((transA ? k : m) * lda)
                let b = rng.floats((transB ? n : k) * ldb)
                var c = rng.floats(m * ldc)
                let expected = reference(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                                         b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                              a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: cp.baseAddress!, ldc: ldc)
                }
                var worst = 0.0
                for i in 0..<m { for j in 0..<n {
                    let e = expected[i * ldc + j], g = Double(c[i * ldc + j])
                    worst = max(worst, abs(g - e) / (1 + abs(e)))
                } }
                // f32 accumulation over k terms of size <= 1: error grows like k * 2^-24.
                #expect(worst < Double(k + 4) * 1.2e-7, "m=\(m) n=\(n) k=\(k) tA=\(transA) tB=\(transB): \(worst)")
                // Padding columns of C are never written.
                for i in 0..<m { for j in n..<ldc where beta == 0 && alpha == 1 {
                    #expect(Double(c[i * ldc + j]) == expected[i * ldc + j])
                } }
            }
        }
    }

    @Test func viewFormChecksShapes() {
        var rng = TestRNG(seed: 1)
        let a = FloatBuffer(rng.floats(6), shape: [2, 3])
        let b = FloatBuffer(rng.floats(12), shape: [4, 3])
        let c = FloatBuffer(shape: [2, 4])
        BLAS.gemm(a.view, b.view, transB: true, into: c.view)
        let av = a.toArray(), bv = b.toArray(), cv = c.toArray()
        for i in 0..<2 { for j in 0..<4 {
            let e = (0..<3).reduce(0.0) { $0 + Double(av[i * 3 + $1]) * Double(bv[j * 3 + $1]) }
            #expect(abs(Double(cv[i * 4 + j]) - e) < 1e-6)
        } }
    }

    @Test func threadCountCanBeSet() {
        let before = BLAS.threads
        BLAS.threads = 1
        #expect(BLAS.threads == 1)
        BLAS.threads = before
        #expect(!BLAS.coreName.isEmpty)
    }

    @Test func buffersAreAlignedAndZeroed() {
        for n in [0, 1, 3, 16, 1000] {
            let b = FloatBuffer(shape: [n])
            #expect(Int(bitPattern: b.pointer) % bufferAlignment == 0)
            #expect(b.toArray().allSatisfy { $0 == 0 })
        }
        let m = FloatBuffer((0..<12).map(Float.init), shape: [3, 4])
        #expect(m.view.rows(1..<3).pointer[0] == 4)
        #expect(m.view.reshaped([4, 3]).rows == 4)
    }
}
