import CMisalignKernels
import Foundation
import MisalignCore

// Release-mode benchmarks. `misalign-bench` runs all of them; `misalign-bench NAME ... [--options]`
// runs the named ones. Each prints a table with its ratio to the machine's measured ceiling or
// to the reference tool measured in the same run.
//
// Every benchmark declares its options (`values` take an argument, `flags` do not); the command
// line is checked against the selected benchmarks' options before anything runs, and each
// benchmark is handed only the options, never the benchmark names.
struct Benchmark {
    var name: String
    var summary: String
    var values: [String] = []
    var flags: [String] = []
    var run: ([String]) throws -> Void
}

let benchmarks: [Benchmark] = [
    Benchmark(name: "gemm", summary: "sgemm GFLOP/s on Qwen2.5-0.5B layer shapes vs the BLAS peak", values: ["--tokens"], run: runGemmBenchmark),
    Benchmark(name: "safetensors", summary: "open a 1 GB bf16 safetensors file and touch one tensor", run: runSafeTensorsBenchmark),
    Benchmark(name: "matmul", summary: "decode-time x W^T with 1-32 rows: direct f32/bf16 kernels vs sgemm, 1 thread",
              values: ["--out", "--in"], flags: ["--huge"], run: runMatmulBenchmark),
    Benchmark(name: "forward", summary: "Qwen2.5-0.5B-shaped prefill and decode vs the sgemm ceiling, memory bandwidth and PyTorch",
              values: ["--prompt", "--steps", "--only", "--residency", "--precision", "--lora", "--model", "--dtype"], flags: ["--no-torch"],
              run: runForwardBenchmark),
    Benchmark(name: "residency", summary: "single-sample decoding from mapped weights vs weights read into huge pages, steps alternating",
              values: ["--steps", "--precision", "--model", "--dtype"], run: runResidencyBenchmark),
    Benchmark(name: "write-synthetic", summary: "write a random model folder: --shape tiny|0.5b|7b|llama-8b|gemma2-9b --out DIR (not a benchmark)",
              values: ["--shape", "--dtype", "--seed", "--out"], run: runWriteSynthetic),
    Benchmark(name: "convert", summary: "bf16/f16 <-> f32 conversion throughput", run: runConvertBenchmark),
    Benchmark(name: "gguf", summary: "GGUF Q4_K / Q6_K / Q8_0 dequantisation GB/s vs the memory read bandwidth", run: runGGUFBenchmark),
    Benchmark(name: "tokenizer", summary: "encode MB/s on a 6 MB mixed corpus vs HF tokenizers, tokenizer.json load time",
              values: ["--tokenizer", "--mb"], flags: ["--no-hf"], run: runTokenizerBenchmark),
    Benchmark(name: "changepoint", summary: "PELT on 100k points and the bootstrap onset analysis vs ruptures",
              values: ["--n", "--ruptures-n", "--resamples"], flags: ["--no-ruptures"], run: runChangePointBenchmark),
    Benchmark(name: "train", summary: "LoRA training step on a 0.5B-shaped model, batch 2 x 256, vs PyTorch+PEFT",
              values: ["--shape", "--dtype", "--batch", "--tokens", "--steps", "--layers", "--model-dir", "--precision"],
              flags: ["--no-torch", "--recompute", "--sgemm"],
              run: runTrainBenchmark),
    Benchmark(name: "judge", summary: "10,000 judge verdicts over libcurl, 64 in flight, against the local mock server; cached rerun",
              values: ["--verdicts", "--in-flight"], run: runJudgeBenchmark),
    Benchmark(name: "local-judge", summary: "in-process judge verdicts/min on a 0.5B-shaped model: candidate trie + shared rubric prefix vs one sequence per candidate",
              values: ["--verdicts", "--model", "--dtype", "--tokenizer"], run: runLocalJudgeBenchmark),
    Benchmark(name: "generate-study", summary: "answers/min of a study's evaluation (8 questions x 20 samples) on a 0.5B-shaped model: static groups vs continuous batching, shared prompt prefix; recording hidden states for projections (--layers)",
              values: ["--questions", "--samples", "--max-tokens", "--mean-tokens", "--max-live", "--model", "--dtype", "--tokenizer", "--layers"], run: runGenerateStudyBenchmark),
    Benchmark(name: "vectors", summary: "building one trait vector (misalign vectors) for a 20-question, 5-pair trait file on a 0.5B-shaped model, by phase",
              values: ["--questions", "--instructions", "--max-tokens", "--model", "--dtype", "--precision", "--tokenizer"], run: runVectorsBenchmark),
    Benchmark(name: "families", summary: "Qwen2, Llama and Gemma 2 at one 0.5B shape: prefill, decode and a LoRA training step, each family's time over Qwen2's",
              values: ["--prompt", "--steps", "--layers"], run: runFamiliesBenchmark),
]

/// The benchmarks named on the command line (all but write-synthetic when none is) and the
/// options for them, or why the command line is wrong.
@MainActor func parseCommandLine(_ args: [String]) -> Result<(selected: [Benchmark], options: [String]), BenchError> {
    var names: [String] = [], options: [String] = []
    var i = 0
    while i < args.count {
        let a = args[i]
        if a.hasPrefix("-") {
            options.append(a)
            // A value option takes the next word, which is then never read as a benchmark name.
            if benchmarks.contains(where: { $0.values.contains(a) }) {
                guard i + 1 < args.count else { return .failure(BenchError("\(a) needs a value")) }
                options.append(args[i + 1]); i += 1
            }
        } else {
            guard benchmarks.contains(where: { $0.name == a }) else {
                return .failure(BenchError("unknown benchmark \(a); choose from \(benchmarks.map(\.name).joined(separator: ", "))"))
            }
            names.append(a)
        }
        i += 1
    }
    let selected = names.isEmpty ? benchmarks.filter { $0.name != "write-synthetic" } : benchmarks.filter { names.contains($0.name) }
    for o in options where o.hasPrefix("-") {
        guard selected.contains(where: { $0.values.contains(o) || $0.flags.contains(o) }) else {
            let accepted = selected.map { b in "\(b.name): \((b.values + b.flags).joined(separator: " ").isEmpty ? "none" : (b.values + b.flags).joined(separator: " "))" }
            return .failure(BenchError("unknown option \(o) for \(selected.map(\.name).joined(separator: ", ")); options: \(accepted.joined(separator: "; "))"))
        }
    }
    return .success((selected, options))
}

let args = Array(CommandLine.arguments.dropFirst())
if args.contains("--help") || args.contains("-h") {
    print("usage: misalign-bench [NAME ...] [--options]\n")
    for b in benchmarks {
        print("  \(b.name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(b.summary)")
        let opts = b.values.map { "\($0) X" } + b.flags
        if !opts.isEmpty { print("  \("".padding(toLength: 16, withPad: " ", startingAt: 0)) options: \(opts.joined(separator: " "))") }
    }
    exit(0)
}
let parsed: (selected: [Benchmark], options: [String])
switch parseCommandLine(args) {
case .success(let p): parsed = p
case .failure(let e): FileHandle.standardError.write(Data("misalign-bench: \(e)\n".utf8)); exit(2)
}
print("OpenBLAS core: \(BLAS.coreName), BLAS threads: \(BLAS.threads), kernels: \(KernelInfo.isa)")
// The machine's ceilings, read once in this run, so every table below can be set against them.
do {
    let threads = max(1, BLAS.threads)
    let fma = misalign_fma_peak_gflops(threads, 0.5), dot = misalign_bf16_dot_peak_gflops(threads, 0.5)
    print("machine: \(cpuModelName()); f32 FMA peak \(fmt(fma)) GFLOP/s, bf16 dot peak "
        + (dot > 0 ? "\(fmt(dot)) GFLOP/s" : "- (no AVX512_BF16)") + ", memory read bandwidth \(fmt(measureBandwidth())) GB/s (\(threads) threads)")
}
for b in parsed.selected {
    print("\n== \(b.name): \(b.summary)")
    do { try b.run(parsed.options) } catch { print("benchmark \(b.name) failed: \(error)"); exit(1) }
}

/// The CPU's name as /proc/cpuinfo gives it ("?" elsewhere).
func cpuModelName() -> String {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
          let colon = line.firstIndex(of: ":") else { return "?" }
    var name = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    if let fm = info.split(separator: "\n").first(where: { $0.hasPrefix("cpu family") }).flatMap({ $0.split(separator: ":").last }),
       let model = info.split(separator: "\n").first(where: { $0.hasPrefix("model\t") }).flatMap({ $0.split(separator: ":").last }) {
        name += " (family \(fm.trimmingCharacters(in: .whitespaces)), model \(model.trimmingCharacters(in: .whitespaces)))"
    }
    return name
}
