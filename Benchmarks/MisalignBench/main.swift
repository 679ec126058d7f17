import Foundation
import MisalignCore

// Release-mode benchmarks. `misalign-bench` runs all of them; `misalign-bench NAME ...` runs
// the named ones. Each prints a table with its ratio to the machine's measured ceiling or to
// the reference tool measured in the same run.
let benchmarks: [(name: String, summary: String, run: ([String]) throws -> Void)] = [
    ("gemm", "sgemm GFLOP/s on Qwen2.5-0.5B layer shapes vs the BLAS peak", runGemmBenchmark),
    ("safetensors", "open a 1 GB bf16 safetensors file and touch one tensor", runSafeTensorsBenchmark),
    ("matmul", "decode-time x W^T with 1-32 rows: direct f32/bf16 kernels vs sgemm, 1 thread", runMatmulBenchmark),
    ("forward", "Qwen2.5-0.5B-shaped prefill and decode vs the sgemm ceiling, memory bandwidth and PyTorch", runForwardBenchmark),
    ("residency", "single-sample decoding from mapped weights vs weights read into huge pages, steps alternating", runResidencyBenchmark),
    ("write-synthetic", "write a random Qwen2 folder: --shape tiny|0.5b|7b --out DIR (not a benchmark)", runWriteSynthetic),
    ("convert", "bf16/f16 <-> f32 conversion throughput", runConvertBenchmark),
    ("tokenizer", "encode MB/s on a 6 MB mixed corpus vs HF tokenizers, tokenizer.json load time", runTokenizerBenchmark),
    ("changepoint", "PELT on 100k points and the bootstrap onset analysis vs ruptures", runChangePointBenchmark),
    ("train", "LoRA training step on a 0.5B-shaped model, batch 2 x 256, vs PyTorch+PEFT", runTrainBenchmark),
    ("judge", "10,000 judge verdicts over libcurl, 64 in flight, against the local mock server; cached rerun", runJudgeBenchmark),
]

let args = Array(CommandLine.arguments.dropFirst())
if args.contains("--help") || args.contains("-h") {
    print("usage: misalign-bench [NAME ...] [--options]\n")
    for b in benchmarks { print("  \(b.name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(b.summary)") }
    exit(0)
}
let names = args.filter { !$0.hasPrefix("-") }
let selected = names.isEmpty ? benchmarks.filter { $0.name != "write-synthetic" } : benchmarks.filter { names.contains($0.name) }
if selected.isEmpty { print("unknown benchmark: \(names.joined(separator: " "))"); exit(2) }
print("OpenBLAS core: \(BLAS.coreName), BLAS threads: \(BLAS.threads), kernels: \(KernelInfo.isa)")
for b in selected {
    print("\n== \(b.name): \(b.summary)")
    do { try b.run(args) } catch { print("benchmark \(b.name) failed: \(error)"); exit(1) }
}
