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

/// Every path of `LinearWeight.apply` (direct decode kernel, packed f32 kernel or sgemm, widened blocks) against a
/// float64 product, for f32, bf16 and f16 storage.
@Suite struct LinearWeightTests {
    @Test(arguments: [DType.f32, .bf16, .f16])
    func allPathsMatchFloat64(dtype: DType) throws {
        var rng = SplitMix64(seed: 77)
        let out = 150, inDim = 67 // odd sizes exercise the vector tails; 150 > one 64-row block
        let wValues = rng.floats(out * inDim)
        let (file, dir) = try temporaryWeights([("w", wValues, [out, inDim])], dtype: dtype)
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = try LinearWeight(tensor: try file.tensor(named: "w"))
        let stored = try file.tensor(named: "w").floats() // the values after rounding to dtype
        let scratch = FloatBuffer(shape: [w.scratchCount])
        for m in [1, 3, 8, 9, 20, 32, 33, 70, 100] { // 100: the packed kernel for f32 and bf16
            let ldx = inDim + 5, ldy = out + 3
            let x = rng.floats(m * ldx)
            for (accumulate, blockRows) in [(false, nil), (true, nil), (false, 64 as Int?)] {
                var y = rng.floats(m * ldy)
                let y0 = y
                y.withUnsafeMutableBufferPointer { yp in
                    w.apply(x: x, ldx: ldx, rows: m, y: yp.baseAddress!, ldy: ldy, accumulate: accumulate, scratch: scratch.pointer,
                            blockRows: blockRows) // 64: three widened blocks, the last partial
                }
                var worst = 0.0
                for i in 0..<m { for o in 0..<out {
                    var s = 0.0
                    for k in 0..<inDim { s += Double(x[i * ldx + k]) * Double(stored[o * inDim + k]) }
                    if accumulate { s += Double(y0[i * ldy + o]) }
                    worst = max(worst, abs(Double(y[i * ldy + o]) - s))
                } }
                #expect(worst < 1e-5, "\(dtype) m=\(m) accumulate=\(accumulate) blocks=\(String(describing: blockRows)): max error \(worst)")
                // Columns past `out` in each row are untouched.
                for i in 0..<m { for o in out..<ldy { #expect(y[i * ldy + o] == y0[i * ldy + o]) } }
            }
        }
    }

    /// The decode product split over the kernels' thread pool gives the same bits as one thread,
    /// for any number of shares (each output row is computed by the same code whatever its
    /// share), and stays right when many threads use the pool at once (all but one then run
    /// their shares themselves).
    @Test(arguments: [0, 1] as [Int32])
    func poolSplitMatchesOneThreadBitForBit(isBF16: Int32) throws {
        var rng = SplitMix64(seed: 5)
        let out = 1000, inDim = 70 // 1000 rows: 62.5 blocks of 16, so the last share is partial
        let wf = rng.floats(out * inDim)
        let wb = Precision.f32ToBF16(wf)
        for m in [1, 2, 3, 4, 5, 20, 32] {
            let x = rng.floats(m * inDim)
            @Sendable func run(_ threads: Int) -> [Float] {
                var y = [Float](repeating: -1, count: m * out)
                y.withUnsafeMutableBufferPointer { yp in
                    if isBF16 == 1 {
                        wb.withUnsafeBufferPointer { misalign_matmul_parallel_t(1, yp.baseAddress, out, x, inDim, $0.baseAddress, m, inDim, out, 0, threads) }
                    } else {
                        wf.withUnsafeBufferPointer { misalign_matmul_parallel_t(0, yp.baseAddress, out, x, inDim, $0.baseAddress, m, inDim, out, 0, threads) }
                    }
                }
                return y
            }
            let one = run(1)
            #expect(!one.contains(-1))
            for threads in [2, 3, 5, 100] { // 100: more than the pool allows (64), so fewer, larger shares
                #expect(run(threads) == one, "m=\(m) threads=\(threads)")
            }
            // Eight callers at once, each asking for 3 shares.
            let results = UnsafeMutableBufferPointer<[Float]>.allocate(capacity: 8)
            results.initialize(repeating: [])
            defer { results.deallocate() }
            let box = UncheckedBox(results)
            DispatchQueue.concurrentPerform(iterations: 8) { i in box.value[i] = run(3) }
            for i in 0..<8 { #expect(results[i] == one, "concurrent caller \(i), m=\(m)") }
        }
    }

    /// A group of products sharing x (`LinearWeight.apply(group:)`: a layer's q, k, v) gives
    /// each product the bits `apply` gives it alone, on every path: the direct kernels (1-32
    /// rows; 33 and 70 where the packed kernel is at hand), the packed kernel (28 and 100 rows of
    /// f32, 100 of bf16) or sgemm (past 32 without it), the bf16 dot kernels (bf16 compute, both sides of their rule), f16's
    /// one-by-one fallback; with accumulation; and with 1-5 threads on the C entry points.
    @Test(arguments: [DType.f32, .bf16, .f16])
    func groupGivesEachProductItsOwnBits(dtype: DType) throws {
        var rng = SplitMix64(seed: 78)
        let inDim = 96, outs = [700, 96, 131] // 88,992 weights in all: past the one-thread limit
        let (file, dir) = try temporaryWeights(outs.enumerated().map { ("w\($0.offset)", rng.floats($0.element * inDim), [$0.element, inDim]) },
                                               dtype: dtype)
        defer { try? FileManager.default.removeItem(at: dir) }
        let weights = try outs.indices.map { try LinearWeight(tensor: try file.tensor(named: "w\($0)")) }
        let scratch = FloatBuffer(shape: [weights.map(\.scratchCount).max()!])
        let precisions: [ComputePrecision] = dtype == .bf16 ? [.f32, .bf16] : [.f32]
        for precision in precisions {
            for m in [1, 3, 5, 20, 28, 32, 33, 70, 100] {
                let ldx = inDim + 2
                let x = rng.floats(m * ldx)
                let start = outs.map { rng.floats(m * $0) }
                for accumulate in [false, true] {
                    let alone = start.map { FloatBuffer($0) }, grouped = start.map { FloatBuffer($0) }
                    for i in outs.indices {
                        weights[i].apply(x: x, ldx: ldx, rows: m, y: alone[i].pointer, ldy: outs[i], accumulate: accumulate,
                                         scratch: scratch.pointer, precision: precision)
                    }
                    LinearWeight.apply(group: outs.indices.map { LinearWeight.GroupProduct(weight: weights[$0], y: grouped[$0].pointer, ldy: outs[$0]) },
                                       x: x, ldx: ldx, rows: m, accumulate: accumulate, scratch: scratch.pointer, precision: precision)
                    #expect(grouped.map { $0.toArray() } == alone.map { $0.toArray() }, "\(dtype) \(precision) m=\(m) accumulate=\(accumulate)")
                }
                // The C entry points split any way give the bits of one thread.
                guard dtype != .f16 else { continue }
                func run(_ threads: Int) -> [[Float]] {
                    let ys = outs.map { FloatBuffer([Float](repeating: -1, count: m * $0)) }
                    var products = weights.indices.map { misalign_product(w: weights[$0].rawPointer, out: outs[$0], y: ys[$0].pointer, ldy: outs[$0]) }
                    let n = products.count
                    products.withUnsafeMutableBufferPointer { pp in
                        if precision == .bf16 {
                            if LinearWeight.dotFits(rows: m) { _ = misalign_matmul_bf16_dot_group(pp.baseAddress, n, x, ldx, m, inDim, 0, threads) }
                            else { _ = misalign_matmul_bf16_dot_rows_group(pp.baseAddress, n, x, ldx, m, inDim, 0, threads) }
                        } else if LinearWeight.packedAvailable && LinearWeight.packedFits(rows: m, dtype: dtype) {
                            _ = misalign_matmul_packed_group(dtype == .bf16 ? 1 : 0, pp.baseAddress, n, x, ldx, m, inDim, 0, threads)
                        } else {
                            misalign_matmul_group_t(dtype == .bf16 ? 1 : 0, pp.baseAddress, n, x, ldx, m, inDim, 0, threads)
                        }
                    }
                    return ys.map { $0.toArray() }
                }
                if precision == .bf16 && !ComputePrecision.bf16DotAvailable { continue }
                let one = run(1)
                #expect(!one.joined().contains(-1), "\(dtype) \(precision) m=\(m): a row was not written")
                for threads in [2, 3, 5] { #expect(run(threads) == one, "\(dtype) \(precision) m=\(m) threads=\(threads)") }
            }
        }
    }

    /// `misalign_parallel` runs every task of every job exactly once.
    @Test func parallelRunsEachTaskOnce() {
        for n in [1, 2, 3, 8] {
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: n)
            counts.initialize(repeating: 0, count: n)
            defer { counts.deallocate() }
            for _ in 0..<200 {
                misalign_parallel(n, { ctx, t, total in
                    let c = ctx!.assumingMemoryBound(to: Int.self)
                    c[t] += 1
                    _ = total
                }, counts)
            }
            for t in 0..<n { #expect(counts[t] == 200, "n=\(n) task \(t) ran \(counts[t]) times") }
        }
    }
}

/// Lets a concurrentPerform body write disjoint slots of a buffer.
private struct UncheckedBox<T>: @unchecked Sendable { let value: T; init(_ v: T) { value = v } }
