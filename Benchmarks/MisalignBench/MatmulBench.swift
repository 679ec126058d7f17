import CMisalignKernels
import Foundation
import MisalignCore

/// The decode-time product y = x W^T with few rows of x (one row per live sample): the direct
/// kernel (`misalign_matmul_*_t`, what `LinearWeight.apply` uses up to its row threshold)
/// beside sgemm on the same f32 weights, one thread, on Qwen2.5-0.5B's MLP shape (4864 x 896).
/// W (17 MB in f32) does not fit in cache, so one row is bound by memory and many rows by FMAs.
func runMatmulBenchmark(_ args: [String]) throws {
    let out = Int(option(args, "--out") ?? "4864") ?? 4864
    let inDim = Int(option(args, "--in") ?? "896") ?? 896
    var rng = SplitMix64(seed: 3)
    let w = FloatBuffer(shape: [out, inDim], zeroed: false)
    for i in 0..<w.count { w.pointer[i] = Float(rng.normal()) * 0.02 }
    let wb = UnsafeMutablePointer<UInt16>.allocate(capacity: w.count)
    defer { wb.deallocate() }
    misalign_f32_to_bf16(wb, w.pointer, w.count)
    let maxRows = 32
    let x = FloatBuffer(shape: [maxRows, inDim], zeroed: false)
    for i in 0..<x.count { x.pointer[i] = Float(rng.normal()) }
    let y = FloatBuffer(shape: [maxRows, out], zeroed: false)
    print("W: \(out) x \(inDim), 1 thread; GFLOP/s = 2 * rows * out * in / time; GB/s = bytes of W / time")
    var table = Table("rows", "direct f32 GFLOP/s", "GB/s", "direct bf16 GFLOP/s", "GB/s", "sgemm f32 GFLOP/s", "direct/sgemm f32")
    for m in [1, 2, 4, 6, 8, 12, 16, 20, 24, 32] {
        let flops = 2.0 * Double(m * out * inDim)
        let tf = bestTime(repeats: 7) { misalign_matmul_f32_t(y.pointer, out, x.pointer, inDim, w.pointer, m, inDim, 0, out, 0) }
        let tb = bestTime(repeats: 7) { misalign_matmul_bf16_t(y.pointer, out, x.pointer, inDim, wb, m, inDim, 0, out, 0) }
        let saved = BLAS.threads
        BLAS.threads = 1
        let tg = bestTime(repeats: 7) {
            BLAS.gemm(transB: true, m: m, n: out, k: inDim, a: x.pointer, lda: inDim, b: w.pointer, ldb: inDim, c: y.pointer, ldc: out)
        }
        BLAS.threads = saved
        table.add("\(m)", fmt(flops / tf / 1e9), fmt(Double(4 * out * inDim) / tf / 1e9), fmt(flops / tb / 1e9),
                  fmt(Double(2 * out * inDim) / tb / 1e9), fmt(flops / tg / 1e9), fmt(tg / tf, 2) + "x")
    }
    table.print()
}
