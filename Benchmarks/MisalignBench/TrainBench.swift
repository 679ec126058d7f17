import Foundation
import MisalignCore

/// One LoRA training step (forward, hand-written backward, clipping, AdamW) on a
/// Qwen2.5-0.5B-shaped synthetic model in f32, batch 2 x 256 tokens, r 32, alpha 64, rsLoRA,
/// all 7 projections, beside PyTorch + PEFT doing the same step on the same folder with the same
/// threads (f32, and bf16 for orientation). Model-FLOPs utilisation counts 4 x matrix params x
/// tokens (forward x W^T and backward dY W per projection, LM head included) against the
/// square-sgemm ceiling measured in the same run.
///
/// Options: --model-dir DIR (reuse a synthetic folder; default: written to a temp folder, ~2 GB),
/// --batch 2 --tokens 256 --steps 3, --no-torch, --recompute (gradient checkpointing),
/// --shape 7b --layers N --dtype bf16: a 7B-shaped model cut to N layers, to measure time and
/// memory per layer and extrapolate to 28 (the full 7B bf16 file is ~15 GB to write).
/// --sgemm: the frozen weights' forward products on OpenBLAS instead of the packed kernel.
func runTrainBenchmark(_ args: [String]) throws {
    let batch = option(args, "--batch").flatMap(Int.init) ?? 2
    let tokens = option(args, "--tokens").flatMap(Int.init) ?? 256
    let steps = option(args, "--steps").flatMap(Int.init) ?? 3
    var config = option(args, "--shape") == "7b" ? SyntheticModel.qwen25_7B : SyntheticModel.qwen25_0_5B
    if let l = option(args, "--layers").flatMap(Int.init) { config.numHiddenLayers = l }
    let dtype: DType = option(args, "--dtype") == "bf16" ? .bf16 : .f32
    let dir: URL
    var cleanup = false
    if let d = option(args, "--model-dir") { dir = URL(fileURLWithPath: d) } else {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("misalign-train-bench-\(getpid())")
        cleanup = true
    }
    defer { if cleanup { try? FileManager.default.removeItem(at: dir) } }
    if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path) {
        let t0 = now()
        try SyntheticModel.write(config, dtype: dtype, seed: 1, to: dir)
        print("wrote synthetic model (hidden \(config.hiddenSize), \(config.numHiddenLayers) layers, \(dtype.rawValue)) to \(dir.path) in \(fmt(now() - t0)) s")
    }
    print("load average before: \(loadAverage())")
    if args.contains("--sgemm") { LinearWeight.packedEnabled = false }
    defer { LinearWeight.packedEnabled = true }

    // sgemm ceiling, as in the gemm benchmark.
    let n = 2048
    var rng = SplitMix64(seed: 1)
    let a = FloatBuffer(shape: [n * n], zeroed: false), b = FloatBuffer(shape: [n * n], zeroed: false)
    rng.fill(a); rng.fill(b)
    let c = FloatBuffer(shape: [n * n], zeroed: false)
    let peakTime = bestTime(repeats: 3) {
        BLAS.gemm(transB: true, m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
    }
    let ceiling = 2.0 * Double(n * n * n) / peakTime / 1e9

    let weights = try Qwen2Weights(directory: dir)
    config = weights.config
    var settings = TrainingSettings()
    settings.lora = LoRAConfig(rank: 32, alpha: 64, useRSLoRA: true, targets: LoRAModule.allCases)
    settings.recompute = args.contains("--recompute")
    let params = try LoRAParameters(config: settings.lora, model: config)
    params.initializePEFT(seed: 0)
    let model = try LoRATrainingModel(weights: weights, parameters: params, maxRows: batch * tokens, maxSequence: tokens,
                                      recompute: settings.recompute)
    let opt = AdamW(count: params.count, weightDecay: 0.01)
    var seqs: [(ids: [Int], mask: [Bool])] = []
    for _ in 0..<batch { seqs.append(((0..<tokens).map { _ in rng.below(config.vocabSize) }, Array(repeating: true, count: tokens))) }
    let mb = TrainingBatch(sequences: seqs)
    let items = mb.targetCount
    func step() throws {
        params.grads.fill(0)
        try model.accumulateGradients(mb, normalizer: items)
        clipGradientNorm(params.grads.pointer, count: params.count, maxNorm: 1)
        opt.update(params: params.values.pointer, grads: params.grads.pointer, count: params.count, lr: 1e-5)
    }
    let t = try bestTime(repeats: steps) { try step() }
    let rss = Double(peakRSSBytes()) / 1e9
    let layerParams = config.numHiddenLayers * (config.hiddenSize * (config.qDim + 2 * config.kvDim) + config.qDim * config.hiddenSize
        + 3 * config.hiddenSize * config.intermediateSize)
    let matrixParams = Double(layerParams + config.vocabSize * config.hiddenSize)
    let flops = 4 * matrixParams * Double(batch * tokens)
    let gflops = flops / t / 1e9
    print("threads \(BLAS.threads), sgemm ceiling \(fmt(ceiling)) GFLOP/s; LoRA parameters \(params.count), activations planned "
        + "\(model.plannedBytes / 1_048_576) MiB, recompute \(settings.recompute)")
    var table = Table("implementation", "s/step", "tokens/s", "vs torch f32", "peak RSS GB", "model GFLOP/s", "of sgemm ceiling")
    let ours = Double(batch * tokens) / t
    var torchF32: Double?
    var rows: [(String, Double, Double, Double)] = []
    if !args.contains("--no-torch") {
        for dtype in ["float32", "bfloat16"] {
            if let r = runTorchStep(dir: dir, dtype: dtype, batch: batch, tokens: tokens) {
                if dtype == "float32" { torchF32 = r.tokensPerSecond }
                rows.append(("PyTorch+PEFT \(dtype)", r.seconds, r.tokensPerSecond, r.rss))
            } else {
                print("PyTorch+PEFT \(dtype): not available (python3 with torch, transformers, peft needed); skipped")
            }
        }
    }
    table.add("misalign (\(weights.layers[0].qProj.dtype.rawValue) weights)", fmt(t, 2), fmt(ours), torchF32.map { fmt(ours / $0, 2) + "x" } ?? "-", fmt(rss, 2), fmt(gflops),
              fmt(100 * gflops / ceiling) + "%")
    for (name, s, tps, r) in rows {
        table.add(name, fmt(s, 2), fmt(tps), torchF32.map { fmt(tps / $0, 2) + "x" } ?? "-", fmt(r, 2), fmt(flops / s / 1e9), fmt(100 * flops / s / 1e9 / ceiling) + "%")
    }
    table.print()
    print("load average after: \(loadAverage())")
}

private func runTorchStep(dir: URL, dtype: String, batch: Int, tokens: Int) -> (seconds: Double, tokensPerSecond: Double, rss: Double)? {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("torch_train_step.py")
    let proc = Process()
    proc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    proc.arguments = ["python3", script.path, dir.path, "--dtype", dtype, "--threads", String(BLAS.threads),
                      "--batch", String(batch), "--tokens", String(tokens)]
    let pipe = Pipe()
    proc.standardOutput = pipe
    proc.standardError = FileHandle.nullDevice
    guard (try? proc.run()) != nil else { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    proc.waitUntilExit()
    guard proc.terminationStatus == 0, let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
          let v = try? JSONValue.parse(String(line)), let s = v["seconds_per_step"]?.doubleValue,
          let tps = v["tokens_per_s"]?.doubleValue, let rss = v["peak_rss_gb"]?.doubleValue else { return nil }
    return (s, tps, rss)
}

private func peakRSSBytes() -> Int {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return u.ru_maxrss * 1024
}

private func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}
