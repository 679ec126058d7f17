import Testing
import Foundation
import CMisalignKernels
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

/// The backward's bf16 product dx = bf16(dy) W (`misalign_matmul_bf16_dot_nn`, training with
/// `precision: .bf16`) against a float64 sum of the rounded dy times W.
@Suite struct BF16BackwardTests {
    /// One term: dy [m, k] with row stride lda, W [k, n] (bf16 values) with row stride ldw.
    struct Term { var a: [Float]; var lda: Int; var w: [Float]; var k: Int }

    /// Worst |c - sum| / sum|products| over c [m, n] (row stride ldc), sum = c0 (when accumulating)
    /// + sum over the terms of bf16(a) W in float64.
    static func worstError(c: [Float], c0: [Float]?, terms: [Term], m: Int, n: Int, ldc: Int, ldw: Int) -> Double {
        let rounded = terms.map { Precision.bf16ToF32(Precision.f32ToBF16($0.a)) }
        var worst = 0.0
        for r in 0..<m { for j in 0..<n {
            var s = c0.map { Double($0[r * ldc + j]) } ?? 0, mag = abs(s)
            for (t, a) in zip(terms, rounded) {
                for o in 0..<t.k { let p = Double(a[r * t.lda + o]) * Double(t.w[o * ldw + j]); s += p; mag += abs(p) }
            }
            worst = max(worst, abs(Double(c[r * ldc + j]) - s) / max(mag, 1e-30))
        } }
        return worst
    }

    /// Runs the group kernel on random c and checks it against float64 and that columns past n
    /// keep their bits. Returns c.
    static func runChecked(terms: [Term], m: Int, n: Int, ldw: Int, accumulate: Bool, threads: Int, rng: inout SplitMix64) -> [Float] {
        let ldc = n + 5
        var c = rng.floats(m * ldc)
        let c0 = c
        let wb = terms.map { Precision.f32ToBF16($0.w) }
        var ok: Int32 = 0
        c.withUnsafeMutableBufferPointer { cp in
            // The terms' pointers stay valid inside these nested closures.
            func call(_ i: Int, _ built: [misalign_nn_term]) {
                if i == terms.count {
                    ok = built.withUnsafeBufferPointer {
                        misalign_matmul_bf16_dot_nn_group(cp.baseAddress, ldc, $0.baseAddress, $0.count, m, n, accumulate ? 1 : 0, threads)
                    }
                    return
                }
                terms[i].a.withUnsafeBufferPointer { a in
                    wb[i].withUnsafeBufferPointer { w in
                        call(i + 1, built + [misalign_nn_term(a: a.baseAddress, lda: terms[i].lda, w: w.baseAddress, ldw: ldw, k: terms[i].k)])
                    }
                }
            }
            call(0, [])
        }
        #expect(ok == 1)
        let err = worstError(c: c, c0: accumulate ? c0 : nil, terms: terms, m: m, n: n, ldc: ldc, ldw: ldw)
        #expect(err < 1e-6, "m=\(m) k=\(terms.map(\.k)) n=\(n) accumulate=\(accumulate) threads=\(threads): \(err)")
        for r in 0..<m { for j in n..<ldc { #expect(c[r * ldc + j].bitPattern == c0[r * ldc + j].bitPattern, "column past n written") } }
        return c
    }

    static func term(m: Int, k: Int, n: Int, ldw: Int, rng: inout SplitMix64) -> Term {
        Term(a: rng.floats(m * (k + 3)), lda: k + 3, w: Precision.bf16ToF32(Precision.f32ToBF16(rng.floats(k * ldw))), k: k)
    }

    /// Rows around the 12-row tiles, k around the 256-pair panels (odd included: the last pair
    /// has a zero top), n around the 32-column blocks and the 16-block panels, strided a, W and
    /// c, accumulation, 1-3 threads; the same bits whatever the split; k = 0 gives zeros.
    @Test(.enabled(if: ComputePrecision.bf16DotAvailable, "this CPU has no AVX512_BF16; the fallback is tested below"))
    func kernelMatchesFloat64() {
        var rng = SplitMix64(seed: 21)
        for (m, k, n) in [(1, 1, 1), (13, 7, 33), (12, 64, 32), (25, 513, 100), (37, 1030, 600), (5, 600, 64), (50, 9, 31), (3, 0, 5)] {
            let ldw = n + 1
            let t = Self.term(m: m, k: k, n: n, ldw: ldw, rng: &rng)
            var first: [UInt32] = []
            for (accumulate, threads) in [(false, 1), (true, 2), (false, 3), (false, 2)] {
                let c = Self.runChecked(terms: [t], m: m, n: n, ldw: ldw, accumulate: accumulate, threads: threads, rng: &rng)
                if accumulate { continue }
                // The product's columns only (those past n keep each call's random start).
                let product = (0..<m).flatMap { r in (0..<n).map { c[r * (n + 5) + $0].bitPattern } }
                if first.isEmpty { first = product } else { #expect(product == first, "\(threads) threads differ from one (m=\(m) k=\(k) n=\(n))") }
            }
        }
    }

    /// A sum of terms (q, k and v's input gradients) in one call.
    @Test(.enabled(if: ComputePrecision.bf16DotAvailable, "this CPU has no AVX512_BF16; the fallback is tested below"))
    func groupSumsItsTerms() {
        var rng = SplitMix64(seed: 22)
        let m = 30, n = 70, ldw = n + 2
        let terms = [600, 40, 41].map { Self.term(m: m, k: $0, n: n, ldw: ldw, rng: &rng) }
        for (accumulate, threads) in [(false, 1), (true, 2)] {
            _ = Self.runChecked(terms: terms, m: m, n: n, ldw: ldw, accumulate: accumulate, threads: threads, rng: &rng)
        }
    }

    /// `LinearWeight.applyTransposed` with `.bf16`, alone and as a group, on whichever path the
    /// CPU takes (the dot kernel, or rounded dy through the f32 path): the product of the rounded
    /// dy; f32 weights ignore the setting.
    @Test func linearWeightRoundsTheGradientOnEveryPath() throws {
        var rng = SplitMix64(seed: 23)
        let out = 150, out2 = 40, inDim = 96, m = 45
        for dtype in [DType.bf16, .f32] {
            let (file, dir) = try temporaryWeights([("w", rng.floats(out * inDim), [out, inDim]), ("v", rng.floats(out2 * inDim), [out2, inDim])],
                                                   dtype: dtype)
            defer { try? FileManager.default.removeItem(at: dir) }
            let w = try LinearWeight(tensor: try file.tensor(named: "w")), v = try LinearWeight(tensor: try file.tensor(named: "v"))
            let wv = try file.tensor(named: "w").floats(), vv = try file.tensor(named: "v").floats()
            let scratch = FloatBuffer(shape: [max(1, w.trainingScratchCount)])
            let dy = rng.floats(m * out), dz = rng.floats(m * out2)
            var dx = [Float](repeating: .nan, count: m * inDim), both = dx
            dx.withUnsafeMutableBufferPointer {
                w.applyTransposed(dy: dy, lddy: out, rows: m, dx: $0.baseAddress!, lddx: inDim, accumulate: false, scratch: scratch.pointer,
                                  precision: .bf16)
            }
            both.withUnsafeMutableBufferPointer { b in
                dy.withUnsafeBufferPointer { dyp in
                    dz.withUnsafeBufferPointer { dzp in
                        LinearWeight.applyTransposed(group: [.init(weight: w, dy: dyp.baseAddress!, lddy: out), .init(weight: v, dy: dzp.baseAddress!, lddy: out2)],
                                                     rows: m, dx: b.baseAddress!, lddx: inDim, accumulate: false, scratch: scratch.pointer, precision: .bf16)
                    }
                }
            }
            if dtype == .bf16 {
                let one = Self.worstError(c: dx, c0: nil, terms: [Term(a: dy, lda: out, w: wv, k: out)], m: m, n: inDim, ldc: inDim, ldw: inDim)
                #expect(one < 1e-6, "alone: \(one)")
                let two = Self.worstError(c: both, c0: nil, terms: [Term(a: dy, lda: out, w: wv, k: out), Term(a: dz, lda: out2, w: vv, k: out2)],
                                          m: m, n: inDim, ldc: inDim, ldw: inDim)
                #expect(two < 1e-6, "group: \(two)")
            } else {
                var plain = [Float](repeating: .nan, count: m * inDim)
                plain.withUnsafeMutableBufferPointer {
                    w.applyTransposed(dy: dy, lddy: out, rows: m, dx: $0.baseAddress!, lddx: inDim, accumulate: false, scratch: scratch.pointer)
                }
                #expect(dx == plain, "f32 weights ignore .bf16")
            }
        }
    }
}
