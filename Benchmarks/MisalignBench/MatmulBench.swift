import CMisalignKernels
import Foundation
import MisalignCore

/// The decode-time product y = x W^T with few rows of x (one row per live sample): the direct
/// kernel (`misalign_matmul_*_t`, what `LinearWeight.apply` uses up to its row threshold)
/// beside sgemm on the same f32 weights, one thread, on Qwen2.5-0.5B's MLP shape (4864 x 896).
/// One row is bound by memory and many rows by FMAs; `--out 151936` (the head) keeps W out of
/// cache, and `--huge` puts the bf16 W on 2 MB pages to show what 4 KB pages cost a stream.
func runMatmulBenchmark(_ args: [String]) throws {
    let out = Int(option(args, "--out") ?? "4864") ?? 4864
    let inDim = Int(option(args, "--in") ?? "896") ?? 896
    var rng = SplitMix64(seed: 3)
    let w = FloatBuffer(shape: [out, inDim], zeroed: false)
    for i in 0..<w.count { w.pointer[i] = Float(rng.normal()) * 0.02 }
    // `--huge`: W in anonymous memory advised for 2 MB pages (what mapped weight files lack).
    let bytes = (2 * w.count + (2 << 20) - 1) / (2 << 20) * (2 << 20)
    let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
    if args.contains("--huge") { _ = madvise(raw, bytes, 14) } else { _ = madvise(raw, bytes, 15) }
    defer { munmap(raw, bytes) }
    let wb = raw.assumingMemoryBound(to: UInt16.self)
    misalign_f32_to_bf16(wb, w.pointer, w.count)
    let maxRows = 32
    let x = FloatBuffer(shape: [maxRows, inDim], zeroed: false)
    for i in 0..<x.count { x.pointer[i] = Float(rng.normal()) }
    let y = FloatBuffer(shape: [maxRows, out], zeroed: false)
    print("W: \(out) x \(inDim), 1 thread; GFLOP/s = 2 * rows * out * in / time; GB/s = bytes of W / time")
    var table = Table("rows", "direct f32 GFLOP/s", "GB/s", "direct bf16 GFLOP/s", "GB/s", "bf16 dot GFLOP/s", "GB/s", "sgemm f32 GFLOP/s",
                      "direct/sgemm f32")
    for m in [1, 2, 4, 6, 8, 12, 16, 20, 24, 32] {
        let flops = 2.0 * Double(m * out * inDim)
        let tf = bestTime(repeats: 7) { misalign_matmul_f32_t(y.pointer, out, x.pointer, inDim, w.pointer, m, inDim, 0, out, 0) }
        let tb = bestTime(repeats: 7) { misalign_matmul_bf16_t(y.pointer, out, x.pointer, inDim, wb, m, inDim, 0, out, 0) }
        // bf16 products (`ComputePrecision.bf16`): x rounded to bf16, vdpbf16ps along k.
        let td = ComputePrecision.bf16DotAvailable
            ? bestTime(repeats: 7) { _ = misalign_matmul_bf16_dot_rows(y.pointer, out, x.pointer, inDim, wb, m, inDim, out, 0, 1) }
            : .infinity
        let saved = BLAS.threads
        BLAS.threads = 1
        let tg = bestTime(repeats: 7) {
            BLAS.gemm(transB: true, m: m, n: out, k: inDim, a: x.pointer, lda: inDim, b: w.pointer, ldb: inDim, c: y.pointer, ldc: out)
        }
        BLAS.threads = saved
        table.add("\(m)", fmt(flops / tf / 1e9), fmt(Double(4 * out * inDim) / tf / 1e9), fmt(flops / tb / 1e9),
                  fmt(Double(2 * out * inDim) / tb / 1e9), fmt(flops / td / 1e9), fmt(Double(2 * out * inDim) / td / 1e9),
                  fmt(flops / tg / 1e9), fmt(tg / tf, 2) + "x")
    }
    table.print()
}
