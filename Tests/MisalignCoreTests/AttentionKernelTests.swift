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

/// `misalign_attention` against a float64 computation from its definition, on shapes the
/// model fixtures do not reach: a head size that is not a multiple of 16 (the scalar tails),
/// a cache split into three runs (a fork of a fork), grouped-query heads, new rows starting
/// mid-sequence, a partial block of rows, and 1-3 threads; and Qwen2.5's own head sizes (64
/// and 128, which take the kernel's fixed-offset paths) with its groups of 7 query heads, over
/// enough positions for whole and partial blocks of 16 keys in every run.
@Suite struct AttentionKernelTests {
    @Test(arguments: [(16, 1, 1, 6, 2), (20, 7, 0, 6, 2), (64, 9, 5, 6, 2), (37, 1, 40, 6, 2),
                      (64, 1, 70, 14, 2), (128, 3, 49, 14, 2), (128, 6, 0, 7, 1)])
    func matchesFloat64(hd: Int, count: Int, start: Int, heads: Int, kvHeads: Int) {
        var rng = SplitMix64(seed: UInt64(hd * 100 + count))
        let group = heads / kvHeads
        let total = start + count
        // Three runs of positions: [0, a), [a, b), [b, total).
        let a = total / 3, b = 2 * total / 3
        let runs = [(0, a), (a, b - a), (b, total - b)].filter { $0.1 > 0 }
        let k = (0..<kvHeads).map { _ in rng.floats(total * hd) }, v = (0..<kvHeads).map { _ in rng.floats(total * hd) }
        let ldq = heads * hd + 3, ldo = heads * hd + 5
        let q = rng.floats(count * ldq)
        let scale = 1 / Float(hd).squareRoot()
        // float64 reference
        var want = [Double](repeating: 0, count: count * ldo)
        for i in 0..<count { for h in 0..<heads {
            let g = h / group, visible = start + i + 1
            let s = (0..<visible).map { j in (0..<hd).reduce(0.0) { $0 + Double(q[i * ldq + h * hd + $1]) * Double(k[g][j * hd + $1]) } * Double(scale) }
            let m = s.max()!
            let e = s.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
            for d in 0..<hd { want[i * ldo + h * hd + d] = (0..<visible).reduce(0.0) { $0 + e[$1] / z * Double(v[g][$1 * hd + d]) } }
        } }
        for threads in [1, 2, 3] {
            var out = [Float](repeating: .nan, count: count * ldo)
            k.withContiguousPointers { kp in v.withContiguousPointers { vp in
                var keys: [UnsafePointer<Float>?] = [], values: [UnsafePointer<Float>?] = []
                for g in 0..<kvHeads { for (f, _) in runs { keys.append(kp[g] + f * hd); values.append(vp[g] + f * hd) } }
                out.withUnsafeMutableBufferPointer { o in
                    misalign_attention(o.baseAddress, ldo, q, ldq, count, start, heads, kvHeads, hd, scale, keys, values,
                                       runs.map(\.0), runs.map(\.1), runs.count, threads)
                }
            } }
            var worst = 0.0
            for i in 0..<count { for c in 0..<(heads * hd) { worst = max(worst, abs(Double(out[i * ldo + c]) - want[i * ldo + c])) } }
            #expect(worst < 2e-6, "hd \(hd) count \(count) start \(start) threads \(threads): \(worst)")
            // The padding between rows is not written.
            for i in 0..<count { for c in (heads * hd)..<ldo { #expect(out[i * ldo + c].isNaN) } }
        }
    }

    /// Several sequences in one job (a decoding step of N samples, or prefill of several
    /// prompts): each gets the bits it gets alone on one thread, whatever the threads.
    @Test func batchGivesEachSequenceItsOwnResult() {
        var rng = SplitMix64(seed: 77)
        let heads = 14, kvHeads = 2, hd = 64, ldq = heads * hd, ldo = heads * hd + 3
        let scale = 1 / Float(hd).squareRoot()
        // (new rows, first new position, runs of the cache as (first, count))
        let seqs: [(count: Int, start: Int, runs: [(Int, Int)])] = [
            (1, 40, [(0, 41)]), (5, 0, [(0, 5)]), (1, 90, [(0, 32), (32, 59)]), (9, 17, [(0, 20), (20, 6)]), (1, 0, [(0, 1)]),
        ]
        let data = seqs.map { sq -> (k: [[Float]], v: [[Float]], q: [Float]) in
            let total = sq.start + sq.count
            return ((0..<kvHeads).map { _ in rng.floats(total * hd) }, (0..<kvHeads).map { _ in rng.floats(total * hd) },
                    rng.floats(sq.count * ldq))
        }
        // Pointers to the runs of every sequence, [kvHeads][runs] each, flattened.
        var keys: [UnsafePointer<Float>?] = [], values: [UnsafePointer<Float>?] = [], first: [Int] = [], len: [Int] = []
        var offsets: [(pointers: Int, runs: Int)] = []
        let storage = data.map { d in (d.k.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: $0.count) },
                                       d.v.map { UnsafeMutableBufferPointer<Float>.allocate(capacity: $0.count) }) }
        defer { for (k, v) in storage { (k + v).forEach { $0.deallocate() } } }
        for (i, sq) in seqs.enumerated() {
            offsets.append((keys.count, first.count))
            for g in 0..<kvHeads {
                _ = storage[i].0[g].initialize(from: data[i].k[g]); _ = storage[i].1[g].initialize(from: data[i].v[g])
                for (f, _) in sq.runs { keys.append(UnsafePointer(storage[i].0[g].baseAddress! + f * hd)); values.append(UnsafePointer(storage[i].1[g].baseAddress! + f * hd)) }
            }
            first += sq.runs.map(\.0); len += sq.runs.map(\.1)
        }
        // Alone, one thread.
        var alone: [[Float]] = []
        for (i, sq) in seqs.enumerated() {
            var out = [Float](repeating: .nan, count: sq.count * ldo)
            let o = offsets[i], nRuns = sq.runs.count
            out.withUnsafeMutableBufferPointer { ob in
                misalign_attention(ob.baseAddress, ldo, data[i].q, ldq, sq.count, sq.start, heads, kvHeads, hd, scale,
                                   Array(keys[o.pointers..<(o.pointers + kvHeads * nRuns)]), Array(values[o.pointers..<(o.pointers + kvHeads * nRuns)]),
                                   Array(first[o.runs..<(o.runs + nRuns)]), Array(len[o.runs..<(o.runs + nRuns)]), nRuns, 1)
            }
            alone.append(out)
        }
        // Together, rows stacked in one q and one out as the model stacks them.
        let rowsBefore = seqs.indices.map { i in seqs[..<i].reduce(0) { $0 + $1.count } }
        let allQ = data.flatMap(\.q), totalRows = seqs.reduce(0) { $0 + $1.count }
        for threads in [1, 2, 3] {
            var out = [Float](repeating: .nan, count: totalRows * ldo)
            keys.withUnsafeBufferPointer { kb in values.withUnsafeBufferPointer { vb in
                first.withUnsafeBufferPointer { fb in len.withUnsafeBufferPointer { lb in
                    allQ.withUnsafeBufferPointer { qb in out.withUnsafeMutableBufferPointer { ob in
                        let batch = seqs.indices.map { i in
                            misalign_attention_seq(out: ob.baseAddress! + rowsBefore[i] * ldo, q: qb.baseAddress! + rowsBefore[i] * ldq,
                                                   count: seqs[i].count, start: seqs[i].start,
                                                   keys: kb.baseAddress! + offsets[i].pointers, values: vb.baseAddress! + offsets[i].pointers,
                                                   first: fb.baseAddress! + offsets[i].runs, len: lb.baseAddress! + offsets[i].runs,
                                                   segments: seqs[i].runs.count)
                        }
                        misalign_attention_batch(batch, batch.count, ldo, ldq, heads, kvHeads, hd, scale, threads)
                    } }
                } }
            } }
            for i in seqs.indices {
                let mine = Array(out[(rowsBefore[i] * ldo)..<((rowsBefore[i] + seqs[i].count) * ldo)])
                #expect(mine.map(\.bitPattern) == alone[i].map(\.bitPattern), "sequence \(i), \(threads) threads")
            }
        }
    }

    /// silu(g) * u with the vectorised exp, against float64, over the range activations take,
    /// and NaN in gives NaN out (the training loop's NaN check relies on it).
    @Test func siluMatchesFloat64() {
        let g: [Float] = stride(from: -100.0, through: 100.0, by: 0.013).map { Float($0) } + [0, -0, 1e-30, -1e-30, 88.5, -88.5, .nan]
        let u = [Float](repeating: 1.5, count: g.count)
        var out = [Float](repeating: 0, count: g.count)
        out.withUnsafeMutableBufferPointer { misalign_silu_mul($0.baseAddress, g, u, g.count) }
        for i in 0..<(g.count - 1) {
            let x = Double(g[i])
            let want = x / (1 + Foundation.exp(-x)) * 1.5
            // Below g = -88.4, e^-g saturates at 2.4e38 (libm's is Inf), so silu's tiny negative
            // values come out as -g / 2.4e38 (about 6e-37 at g = -100) instead of about 0.
            #expect(abs(Double(out[i]) - want) <= 3e-7 * abs(want) + 1e-36, "silu(\(g[i])): \(out[i]) vs \(want)")
        }
        #expect(out.last!.isNaN)
        // Split over the pool (from 65,536 elements), the same bits as one thread.
        var rng = SplitMix64(seed: 12)
        let n = 70_001, big = rng.floats(n).map { $0 * 20 }, bigUp = rng.floats(n)
        var one = [Float](repeating: 0, count: n), split = [Float](repeating: 0, count: n)
        one.withUnsafeMutableBufferPointer { misalign_silu_mul_threads($0.baseAddress, big, bigUp, n, 1) }
        for threads in [2, 3] {
            split.withUnsafeMutableBufferPointer { misalign_silu_mul_threads($0.baseAddress, big, bigUp, n, threads) }
            #expect(split == one, "\(threads) threads")
        }
        // In place (out == gate, as the model calls it): the same bits, threaded or not.
        for threads in [1, 2] {
            var inPlace = big
            inPlace.withUnsafeMutableBufferPointer { misalign_silu_mul_threads($0.baseAddress, $0.baseAddress, bigUp, n, threads) }
            #expect(inPlace == one, "in place, \(threads) threads")
        }
    }
}

private extension Array where Element == [Float] {
    /// Pointers to each inner array's storage for the duration of `body`.
    func withContiguousPointers<R>(_ body: ([UnsafePointer<Float>]) -> R) -> R {
        func go(_ i: Int, _ acc: [UnsafePointer<Float>]) -> R {
            if i == count { return body(acc) }
            return self[i].withUnsafeBufferPointer { go(i + 1, acc + [$0.baseAddress!]) }
        }
        return go(0, [])
    }
}
