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

/// The packed f32 product (`misalign_matmul_packed`, what `LinearWeight.apply` runs for f32 and
/// bf16 weights past 32 rows of x where the CPU has AVX-512) against a float64 product, and its
/// bits against itself on other thread counts, in a group, and with bf16 weights.
@Suite(.enabled(if: misalign_f32_packed_available() == 1, "this CPU has no AVX-512; products past 32 rows go to sgemm"))
struct PackedKernelTests {
    /// Runs the kernel on f32 weights from y0 (row stride out + 5; x's is inDim + 3) and returns y.
    func run(x: [Float], w: [Float], m: Int, inDim: Int, out: Int, accumulate: Bool, threads: Int, y0: [Float]) -> [Float] {
        var y = y0
        let ok = y.withUnsafeMutableBufferPointer { yp in
            w.withUnsafeBufferPointer {
                misalign_matmul_packed(0, yp.baseAddress, out + 5, x, inDim + 3, $0.baseAddress, m, inDim, out, accumulate ? 1 : 0, threads)
            }
        }
        #expect(ok == 1)
        return y
    }

    /// Token counts around the 16-token transposes, the 32-token blocks and the 256-token
    /// chunks; `in` around the 16-wide pack and the 512-value passes over k (1, 15, 16, 17,
    /// 600, 1030); output rows around the 12-row tiles; strided x and y; accumulation; 1-3
    /// threads. Columns of y past `out` are never written.
    @Test func matchesFloat64() {
        var rng = SplitMix64(seed: 41)
        let cases = [(33, 16, 13), (47, 17, 12), (64, 1, 1), (261, 15, 25), (300, 600, 11), (40, 1030, 37), (257, 64, 150)]
        for (m, inDim, out) in cases {
            let w = rng.floats(out * inDim)
            let x = rng.floats(m * (inDim + 3))
            for (accumulate, threads) in [(false, 1), (true, 2), (false, 3)] {
                let y0 = rng.floats(m * (out + 5))
                let y = run(x: x, w: w, m: m, inDim: inDim, out: out, accumulate: accumulate, threads: threads, y0: y0)
                let err = productError(y: y, y0: accumulate ? y0 : nil, x: x, ldx: inDim + 3, w: w, m: m, inDim: inDim, out: out, ldy: out + 5)
                #expect(err < 1e-6, "m=\(m) in=\(inDim) out=\(out) accumulate=\(accumulate) threads=\(threads): \(err)")
                for r in 0..<m { for o in out..<(out + 5) where y[r * (out + 5) + o] != y0[r * (out + 5) + o] {
                    Issue.record("m=\(m) in=\(inDim) out=\(out): y[\(r), \(o)] past out was written")
                } }
            }
        }
    }

    /// Each result is one chain of FMAs over k in order, so any split over threads gives the
    /// bits of one thread; a group gives each product the bits it gets alone.
    @Test func bitsDoNotDependOnThreadsOrGrouping() {
        var rng = SplitMix64(seed: 42)
        let m = 70, inDim = 96, outs = [700, 96, 131]
        let ws = outs.map { rng.floats($0 * inDim) }
        let wbs = ws.map { FloatBuffer($0) }
        let x = rng.floats(m * (inDim + 3))
        let alone = outs.indices.map { i in
            run(x: x, w: ws[i], m: m, inDim: inDim, out: outs[i], accumulate: false, threads: 1, y0: [Float](repeating: -1, count: m * (outs[i] + 5)))
        }
        for threads in [2, 3, 5] {
            for i in outs.indices {
                let y = run(x: x, w: ws[i], m: m, inDim: inDim, out: outs[i], accumulate: false, threads: threads,
                            y0: [Float](repeating: -1, count: m * (outs[i] + 5)))
                #expect(y == alone[i], "product \(i), threads=\(threads)")
            }
            let ys = outs.map { FloatBuffer([Float](repeating: -1, count: m * ($0 + 5))) }
            var products = outs.indices.map { misalign_product(w: UnsafeRawPointer(wbs[$0].pointer), out: outs[$0], y: ys[$0].pointer, ldy: outs[$0] + 5) }
            let n = products.count
            let ok = products.withUnsafeMutableBufferPointer {
                misalign_matmul_packed_group(0, $0.baseAddress, n, x, inDim + 3, m, inDim, 0, threads)
            }
            #expect(ok == 1)
            #expect(ys.map { $0.toArray() } == alone, "group, threads=\(threads)")
        }
    }

    /// Where `LinearWeight.apply` sends f32 weights: to this kernel from 25 rows where x fills
    /// its 32-token blocks to 3/4 (not at 33-47 or 65-71 rows, the direct kernel's), and its
    /// result is sgemm's to f32 rounding (the same sums in another order).
    @Test func linearWeightUsesItWhereXFillsItsBlocks() throws {
        #expect((1...130).filter { LinearWeight.packedFits(rows: $0, dtype: .f32) } == Array(25...32) + Array(48...64) + Array(72...130))
        #expect((1...130).filter { LinearWeight.packedFits(rows: $0, dtype: .bf16) } == Array(72...130))
        var rng = SplitMix64(seed: 43)
        let out = 200, inDim = 300, m = 90
        let wv = rng.floats(out * inDim)
        let wb = FloatBuffer(wv)
        let w = LinearWeight(f32: wb.pointer, out: out, inDim: inDim, owner: wb)
        let x = rng.floats(m * inDim)
        let viaApply = FloatBuffer(shape: [m, out]), viaKernel = FloatBuffer(shape: [m, out]), viaSgemm = FloatBuffer(shape: [m, out])
        let scratch = FloatBuffer(shape: [w.scratchCount])
        w.apply(x: x, ldx: inDim, rows: m, y: viaApply.pointer, ldy: out, scratch: scratch.pointer)
        #expect(misalign_matmul_packed(0, viaKernel.pointer, out, x, inDim, wb.pointer, m, inDim, out, 0, 2) == 1)
        #expect(viaApply.toArray() == viaKernel.toArray())
        BLAS.gemm(transB: true, m: m, n: out, k: inDim, a: x, lda: inDim, b: wb.pointer, ldb: inDim, c: viaSgemm.pointer, ldc: out)
        var worst: Float = 0, scale: Float = 0
        for i in 0..<(m * out) { worst = max(worst, abs(viaApply.pointer[i] - viaSgemm.pointer[i])); scale = max(scale, abs(viaSgemm.pointer[i])) }
        #expect(worst <= 1e-5 * scale, "packed vs sgemm: \(worst) at scale \(scale)")
    }

    /// bf16 weights are widened exactly, 12 rows x 512 values at a time: the result is, bit for
    /// bit, the f32 kernel's on the widened weights (across the 512-value passes, on 1-3
    /// threads, with accumulation), and `LinearWeight.apply` on bf16 storage at 100 rows is it.
    @Test func bf16WeightsGiveTheWidenedF32Bits() throws {
        var rng = SplitMix64(seed: 44)
        for (m, inDim, out) in [(40, 1030, 37), (300, 600, 11), (33, 16, 13)] {
            let wb = Precision.f32ToBF16(rng.floats(out * inDim))
            let wf = Precision.bf16ToF32(wb)
            let x = rng.floats(m * (inDim + 3))
            for (accumulate, threads) in [(false, 1), (true, 2), (false, 3)] {
                let y0 = rng.floats(m * (out + 5))
                let viaF32 = run(x: x, w: wf, m: m, inDim: inDim, out: out, accumulate: accumulate, threads: threads, y0: y0)
                var viaBF16 = y0
                let ok = viaBF16.withUnsafeMutableBufferPointer { yp in
                    wb.withUnsafeBufferPointer {
                        misalign_matmul_packed(1, yp.baseAddress, out + 5, x, inDim + 3, $0.baseAddress, m, inDim, out, accumulate ? 1 : 0, threads)
                    }
                }
                #expect(ok == 1)
                #expect(viaBF16 == viaF32, "m=\(m) in=\(inDim) out=\(out) accumulate=\(accumulate) threads=\(threads)")
            }
        }
        // Through LinearWeight, from a bf16 safetensors file.
        let out = 50, inDim = 70, m = 100
        let (file, dir) = try temporaryWeights([("w", rng.floats(out * inDim), [out, inDim])], dtype: .bf16)
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = try LinearWeight(tensor: try file.tensor(named: "w"))
        let widened = FloatBuffer(try file.tensor(named: "w").floats())
        let x = rng.floats(m * inDim)
        let viaApply = FloatBuffer(shape: [m, out]), viaKernel = FloatBuffer(shape: [m, out])
        let scratch = FloatBuffer(shape: [w.scratchCount])
        w.apply(x: x, ldx: inDim, rows: m, y: viaApply.pointer, ldy: out, scratch: scratch.pointer)
        #expect(misalign_matmul_packed(0, viaKernel.pointer, out, x, inDim, widened.pointer, m, inDim, out, 0, 1) == 1)
        #expect(viaApply.toArray() == viaKernel.toArray())
    }
}
