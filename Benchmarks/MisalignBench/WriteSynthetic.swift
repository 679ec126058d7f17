import Foundation
import MisalignCore

/// `misalign-bench write-synthetic --shape tiny|0.5b|7b|llama-8b|gemma2-9b [--dtype f32|bf16] [--seed N] --out DIR`:
/// writes a random model folder (for the demo and for benchmarks on real shapes).
func runWriteSynthetic(_ args: [String]) throws {
    guard let out = option(args, "--out") else { print("write-synthetic needs --out DIR"); exit(2) }
    let shape = option(args, "--shape") ?? "tiny"
    let config: Qwen2Config
    switch shape {
    case "tiny": config = SyntheticModel.tiny
    case "0.5b": config = SyntheticModel.qwen25_0_5B
    case "7b": config = SyntheticModel.qwen25_7B
    case "llama-8b": config = SyntheticModel.llama31_8B
    case "gemma2-9b": config = SyntheticModel.gemma2_9B
    default: print("unknown --shape \(shape) (tiny, 0.5b, 7b, llama-8b, gemma2-9b)"); exit(2)
    }
    let dtype: DType = option(args, "--dtype") == "bf16" ? .bf16 : (shape == "tiny" ? .f32 : .bf16)
    let t0 = now()
    try SyntheticModel.write(config, dtype: dtype, seed: UInt64(option(args, "--seed") ?? "0") ?? 0, to: URL(fileURLWithPath: out))
    print("wrote \(shape) (\(dtype.rawValue), \(config.parameterCount) parameters) to \(out) in \(fmt(now() - t0, 1)) s")
}
