import Foundation
import Testing
import CMisalignKernels
@testable import MisalignKernels

/// Gemma 2's kernels against float64 computations from their definitions (the model fixture
/// checks them against transformers on its shapes): the attention kernel's soft-cap and sliding
/// window over a cache split into runs, with new rows starting mid-sequence and 1-3 threads;
/// the GeGLU activation and its derivative; the windowed softmax of the training pass.
@Suite struct Gemma2KernelTests {
    @Test(arguments: [(32, 9, 0, 4, 50), (48, 3, 30, 7, 2), (256, 5, 12, 16, 0), (64, 1, 40, 0, 3)])
    func cappedWindowedAttentionMatchesFloat64(hd: Int, count: Int, start: Int, window: Int, cap: Int) {
        var rng = SplitMix64(seed: UInt64(hd + count * 7 + window))
        let heads = 4, kvHeads = 2, group = heads / kvHeads, total = start + count
        let runs = [(0, total / 2), (total / 2, total - total / 2)].filter { $0.1 > 0 }
        let k = (0..<kvHeads).map { _ in rng.floats(total * hd).map { $0 * 3 } }, v = (0..<kvHeads).map { _ in rng.floats(total * hd) }
        let ld = heads * hd
        let q = rng.floats(count * ld).map { $0 * 3 }
        let scale: Float = 0.2, softcap = Float(cap)
        var want = [Double](repeating: 0, count: count * ld)
        for i in 0..<count { for h in 0..<heads {
            let g = h / group, visible = start + i + 1, lo = window > 0 ? max(0, visible - window) : 0
            let s = (lo..<visible).map { j -> Double in
                let raw = (0..<hd).reduce(0.0) { $0 + Double(q[i * ld + h * hd + $1]) * Double(k[g][j * hd + $1]) } * Double(scale)
                return cap > 0 ? Double(cap) * Foundation.tanh(raw / Double(cap)) : raw
            }
            let m = s.max()!
            let e = s.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
            for d in 0..<hd { want[i * ld + h * hd + d] = e.indices.reduce(0.0) { $0 + e[$1] / z * Double(v[g][(lo + $1) * hd + d]) } }
        } }
        for threads in [1, 2, 3] {
            var out = [Float](repeating: .nan, count: count * ld)
            k[0].withUnsafeBufferPointer { k0 in k[1].withUnsafeBufferPointer { k1 in
                v[0].withUnsafeBufferPointer { v0 in v[1].withUnsafeBufferPointer { v1 in
                    var keys: [UnsafePointer<Float>?] = [], values: [UnsafePointer<Float>?] = []
                    for (kp, vp) in [(k0, v0), (k1, v1)] {
                        for (f, _) in runs { keys.append(kp.baseAddress! + f * hd); values.append(vp.baseAddress! + f * hd) }
                    }
                    let first = runs.map(\.0), len = runs.map(\.1)
                    keys.withUnsafeBufferPointer { kb in values.withUnsafeBufferPointer { vb in
                        first.withUnsafeBufferPointer { fb in len.withUnsafeBufferPointer { lb in
                            out.withUnsafeMutableBufferPointer { o in
                                q.withUnsafeBufferPointer { qb in
                                    var seq = misalign_attention_seq(out: o.baseAddress, q: qb.baseAddress, count: count, start: start,
                                                                     keys: kb.baseAddress, values: vb.baseAddress, first: fb.baseAddress,
                                                                     len: lb.baseAddress, segments: runs.count)
                                    misalign_attention_batch_capped(&seq, 1, ld, ld, heads, kvHeads, hd, scale, softcap, window, threads)
                                }
                            }
                        } }
                    } }
                } }
            } }
            let worst = zip(out, want).map { abs(Double($0) - $1) }.max()!
            #expect(worst < 3e-6, "hd \(hd) count \(count) start \(start) window \(window) cap \(cap) threads \(threads): \(worst)")
        }
    }

    /// gelu_tanh(g) * u and its two partial derivatives, against float64.
    @Test func geluTanhAndItsBackwardMatchFloat64() {
        let g: [Float] = stride(from: -12.0, through: 12.0, by: 0.0037).map { Float($0) } + [0, 1e-20, -1e-20]
        var rng = SplitMix64(seed: 4)
        let u = rng.floats(g.count), dout = rng.floats(g.count)
        func gelu(_ x: Double) -> Double { 0.5 * x * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x))) }
        var out = [Float](repeating: 0, count: g.count), dg = out, du = out
        out.withUnsafeMutableBufferPointer { misalign_gelu_tanh_mul_threads($0.baseAddress, g, u, g.count, 1) }
        dg.withUnsafeMutableBufferPointer { a in du.withUnsafeMutableBufferPointer { b in
            misalign_gelu_tanh_mul_backward_threads(a.baseAddress, b.baseAddress, dout, g, u, g.count, 1)
        } }
        for i in g.indices {
            let x = Double(g[i]), h = 1e-6 * max(1, abs(x))
            let derivative = (gelu(x + h) - gelu(x - h)) / (2 * h)
            #expect(abs(Double(out[i]) - gelu(x) * Double(u[i])) <= 1e-6 * max(1, abs(gelu(x))), "gelu(\(x))")
            #expect(abs(Double(du[i]) - Double(dout[i]) * gelu(x)) <= 1e-6 * max(1, abs(gelu(x))), "dup at \(x)")
            #expect(abs(Double(dg[i]) - Double(dout[i]) * Double(u[i]) * derivative) <= 2e-6, "dgate at \(x)")
        }
        // Threads give the same bits.
        let n = 70_001, big = rng.floats(n).map { $0 * 8 }, bigUp = rng.floats(n)
        var one = [Float](repeating: 0, count: n), split = one
        one.withUnsafeMutableBufferPointer { misalign_gelu_tanh_mul_threads($0.baseAddress, big, bigUp, n, 1) }
        split.withUnsafeMutableBufferPointer { misalign_gelu_tanh_mul_threads($0.baseAddress, big, bigUp, n, 3) }
        #expect(split == one)
    }

    /// The vectorised tanh behind the soft-caps and GeGLU (cap 1: tanh itself), within 4 ulp of
    /// float64 over the whole range, both branches and the switch between them; its backward.
    @Test func softCapIsTanhWithinAFewUlp() {
        var x: [Float] = stride(from: -20.0, through: 20.0, by: 0.00071).map { Float($0) }
        x += [0, -0, 1e-30, -1e-30, 0.55, -0.55, 0.5499999, 0.5500001, 89, -89, 1e30, -1e30, .infinity, -.infinity]
        var y = x
        y.withUnsafeMutableBufferPointer { misalign_softcap($0.baseAddress, x.count, 1) }
        var worst = 0.0
        for (a, b) in zip(x, y) {
            let want = Foundation.tanh(Double(a))
            let ulp = Double(Float(want).ulp)
            worst = max(worst, abs(Double(b) - want) / max(ulp, Double(Float.leastNormalMagnitude)))
        }
        #expect(worst <= 4, "worst \(worst) ulp")
        var nan: [Float] = [.nan]
        nan.withUnsafeMutableBufferPointer { misalign_softcap($0.baseAddress, 1, 30) }
        #expect(nan[0].isNaN)
        // cap * tanh(x / cap) and d/dx = 1 - tanh^2, at Gemma 2's caps.
        for cap: Float in [30, 50] {
            var v: [Float] = [-200, -31, -1, 0, 0.3, 29, 400]
            let raw = v
            v.withUnsafeMutableBufferPointer { misalign_softcap($0.baseAddress, raw.count, cap) }
            var d = [Float](repeating: 2, count: raw.count)
            d.withUnsafeMutableBufferPointer { misalign_softcap_backward($0.baseAddress, raw, raw.count, cap) }
            for i in raw.indices {
                let t = Foundation.tanh(Double(raw[i]) / Double(cap))
                #expect(abs(Double(v[i]) - Double(cap) * t) <= 4e-7 * Double(cap))
                #expect(abs(Double(d[i]) - 2 * (1 - t * t)) <= 1e-6)
            }
        }
        print("[gemma2] tanh worst \(worst) ulp")
    }

    /// Row r sees r - window < j <= r; the rest is 0; each row sums to 1.
    @Test func windowedSoftmaxMatchesFloat64() {
        var rng = SplitMix64(seed: 9)
        let T = 11, window = 4
        var x = rng.floats(T * T).map { $0 * 5 }
        let original = x
        x.withUnsafeMutableBufferPointer { misalign_softmax_window_rows($0.baseAddress, T, T, window) }
        for r in 0..<T {
            let lo = max(0, r + 1 - window)
            let e = (lo...r).map { Foundation.exp(Double(original[r * T + $0])) }, z = e.reduce(0, +)
            for j in 0..<T {
                let want = j >= lo && j <= r ? e[j - lo] / z : 0
                #expect(abs(Double(x[r * T + j]) - want) < 1e-6, "row \(r) key \(j)")
            }
        }
    }
}
