import CMisalignKernels
import Foundation
import MisalignCore

/// sgemm throughput on the matrix shapes of one Qwen2.5-0.5B layer (hidden 896, 14 query and
/// 2 key/value heads of 64, intermediate 4864), weights stored [out, in] as in HF files, so
/// every projection is `X[M, in] * W[out, in]^T`. The ceiling printed beside each figure is
/// the best this BLAS reaches on a large square product in the same run, and above it the
/// CPU's FMA peak (`misalign_fma_peak_gflops`: vector FMAs from registers), which no product
/// passes. Beside sgemm, on the same shapes and threads: our packed f32 kernel (what
/// `LinearWeight` runs for f32 and bf16 weights past 32 rows, where the CPU has AVX-512; on f32
/// weights, and on the same weights in bf16, widened in the kernel) and, where the
/// CPU has AVX512_BF16, the bf16 dot-product kernel (`ComputePrecision.bf16`) with the weights
/// in bf16.
func runGemmBenchmark(_ args: [String]) throws {
    let tokenCounts = option(args, "--tokens").map { $0.split(separator: ",").compactMap { Int($0) } } ?? [256, 512, 1024]
    let shapes: [(String, Int, Int)] = [ // (name, out, in)
        ("q_proj/o_proj", 896, 896), ("k_proj/v_proj", 128, 896),
        ("gate/up_proj", 4864, 896), ("down_proj", 896, 4864),
    ]
    let maxM = tokenCounts.max() ?? 1024
    var rng = SplitMix64(seed: 1)
    let square = 2048
    // Room for both the layer shapes and the square ceiling product.
    let x = FloatBuffer(shape: [max(maxM * 4864, square * square)], zeroed: false); rng.fill(x)
    let w = FloatBuffer(shape: [4864 * 4864], zeroed: false); rng.fill(w)
    let y = FloatBuffer(shape: [max(maxM * 4864, square * square)], zeroed: false)
    let originalThreads = BLAS.threads
    let wb = UnsafeMutablePointer<UInt16>.allocate(capacity: w.count)
    defer { wb.deallocate() }
    misalign_f32_to_bf16(wb, w.pointer, w.count)
    let dot = ComputePrecision.bf16DotAvailable
    let packed = misalign_f32_packed_available() == 1

    for threads in [1, originalThreads].uniqued() {
        BLAS.threads = threads
        // The ceiling: a 2048^3 product, large enough for the best blocking.
        let n = square
        let peakTime = bestTime(repeats: 3) {
            BLAS.gemm(transB: true, m: n, n: n, k: n, a: x.pointer, lda: n, b: w.pointer, ldb: n, c: y.pointer, ldc: n)
        }
        let peak = 2.0 * Double(n * n * n) / peakTime / 1e9
        let fma = misalign_fma_peak_gflops(threads, 1)
        print("\nthreads \(threads): FMA peak \(fmt(fma)) GFLOP/s; square 2048^3 sgemm ceiling \(fmt(peak)) GFLOP/s (\(fmt(100 * peak / fma))% of the FMA peak)")
        var table = Table("shape (M x out x in)", "sgemm ms", "GFLOP/s", "of ceiling", "packed f32 GFLOP/s", "of FMA peak", "packed / sgemm",
                          "packed, bf16 W", "bf16 dot GFLOP/s", "dot / sgemm")
        // Our kernels first, all shapes, then sgemm on all shapes: OpenBLAS's idle threads keep
        // spinning for a while after each call (on two cores, one of them then shares a core
        // with the pool's worker and halved some of our readings), so ours run after a pause.
        Thread.sleep(forTimeInterval: 0.5)
        let cases = tokenCounts.flatMap { m in shapes.map { (m, $0.0, $0.1, $0.2) } }
        let own = cases.map { (m, _, out, inDim) -> (packed: Double, packedBF16: Double, dot: Double) in
            let tp = !packed ? .infinity : bestTime(repeats: 5) {
                _ = misalign_matmul_packed(0, y.pointer, out, x.pointer, inDim, w.pointer, m, inDim, out, 0, threads)
            }
            let tb = !packed ? .infinity : bestTime(repeats: 5) {
                _ = misalign_matmul_packed(1, y.pointer, out, x.pointer, inDim, wb, m, inDim, out, 0, threads)
            }
            let td = !dot ? .infinity : bestTime(repeats: 5) {
                _ = misalign_matmul_bf16_dot(y.pointer, out, x.pointer, inDim, wb, m, inDim, out, 0, threads)
            }
            return (tp, tb, td)
        }
        var layerFlops = 0.0, layerTime = 0.0, dotTime = 0.0, packedTime = 0.0
        for ((m, name, out, inDim), mine) in zip(cases, own) {
            let t = bestTime(repeats: 5) {
                BLAS.gemm(transB: true, m: m, n: out, k: inDim, a: x.pointer, lda: inDim, b: w.pointer, ldb: inDim,
                          c: y.pointer, ldc: out)
            }
            let flops = 2.0 * Double(m * out * inDim)
            let count = name.contains("/") ? 2.0 : 1.0 // q and o, k and v, gate and up
            layerFlops += flops * count; layerTime += t * count
            let g = flops / t / 1e9
            var packedCells = ["n/a", "", "", "n/a"]
            if packed {
                let tp = mine.packed
                packedTime += tp * count
                packedCells = [fmt(flops / tp / 1e9), fmt(100 * flops / tp / 1e9 / fma) + "%", fmt(t / tp, 2) + "x", fmt(flops / mine.packedBF16 / 1e9)]
            }
            var dotCells = ["n/a", ""]
            if dot {
                dotTime += mine.dot * count
                dotCells = [fmt(flops / mine.dot / 1e9), fmt(t / mine.dot, 2) + "x"]
            }
            table.add("\(name) \(m) x \(out) x \(inDim)", fmt(t * 1e3, 2), fmt(g), fmt(100 * g / peak) + "%",
                      packedCells[0], packedCells[1], packedCells[2], packedCells[3], dotCells[0], dotCells[1])
        }
        table.print()
        let g = layerFlops / layerTime / 1e9
        print("whole layer (all 7 projections, all token counts): sgemm \(fmt(g)) GFLOP/s = \(fmt(100 * g / peak))% of the ceiling"
              + (packed ? "; packed f32 \(fmt(layerFlops / packedTime / 1e9)) GFLOP/s = \(fmt(100 * layerFlops / packedTime / 1e9 / fma))% of the FMA peak = \(fmt(layerTime / packedTime, 2))x sgemm" : "")
              + (dot ? "; bf16 dot \(fmt(layerFlops / dotTime / 1e9)) GFLOP/s = \(fmt(layerTime / dotTime, 2))x sgemm" : ""))
    }
    BLAS.threads = originalThreads
}

/// Deterministic fill for benchmark inputs (values do not affect BLAS speed).
extension SplitMix64 {
    mutating func fill(_ b: FloatBuffer) {
        let p = b.pointer
        for i in 0..<b.count { p[i] = Float(Int64(bitPattern: next()) >> 40) * 0x1p-24 }
    }
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] { var seen = Set<Element>(); return filter { seen.insert($0).inserted } }
}
