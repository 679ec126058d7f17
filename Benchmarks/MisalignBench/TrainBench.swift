import CMisalignKernels
import Foundation
import MisalignCore

/// One LoRA training step (forward, hand-written backward, clipping, AdamW) on a
/// Qwen2.5-0.5B-shaped synthetic model in f32, batch 2 x 256 tokens, r 32, alpha 64, rsLoRA,
/// all 7 projections, beside PyTorch + PEFT doing the same step on the same folder with the same
/// threads (f32 and bf16). Model-FLOPs utilisation counts 4 x matrix params x tokens (forward
/// x W^T and backward dY W per projection, LM head included) against the square-sgemm ceiling
/// measured in the same run; the frozen products alone are timed too and set against the f32
/// FMA peak or, with bf16 products, the bf16 dot-product peak (both measured in the run).
///
/// Options: --model-dir DIR (reuse a synthetic folder; default: written to a temp folder, ~2 GB),
/// --batch 2 --tokens 256 --steps 3, --no-torch, --recompute (gradient checkpointing),
/// --shape 7b --layers N --dtype bf16: a 7B-shaped model cut to N layers, to measure time and
/// memory per layer and extrapolate to 28 (the full 7B bf16 file is ~15 GB to write).
/// --sgemm: the frozen weights' forward products on OpenBLAS instead of the packed kernel.
/// With bf16 weights (`--dtype bf16`) both `training.precision` values run; --precision keeps one.
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

    // The machine's ceilings, measured in this run: sgemm (as in the gemm benchmark), the f32 FMA
    // peak and the bf16 dot-product peak (vector instructions from registers).
    let n = 2048
    var rng = SplitMix64(seed: 1)
    let a = FloatBuffer(shape: [n * n], zeroed: false), b = FloatBuffer(shape: [n * n], zeroed: false)
    rng.fill(a); rng.fill(b)
    let c = FloatBuffer(shape: [n * n], zeroed: false)
    let peakTime = bestTime(repeats: 3) {
        BLAS.gemm(transB: true, m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
    }
    let ceiling = 2.0 * Double(n * n * n) / peakTime / 1e9
    let threads = max(1, BLAS.threads)
    let fmaPeak = misalign_fma_peak_gflops(threads, 1), dotPeak = misalign_bf16_dot_peak_gflops(threads, 1)

    let weights = try Qwen2Weights(directory: dir)
    config = weights.config
    let weightType = weights.layers[0].qProj.dtype
    var settings = TrainingSettings()
    settings.lora = LoRAConfig(rank: 32, alpha: 64, useRSLoRA: true, targets: LoRAModule.allCases)
    settings.recompute = args.contains("--recompute")
    // bf16 weights: both arithmetics, one after the other (`--precision` keeps one).
    let precisions: [ComputePrecision] = option(args, "--precision").flatMap(ComputePrecision.init(rawValue:)).map { [$0] }
        ?? (weightType == .bf16 ? [.f32, .bf16] : [.f32])
    var seqs: [(ids: [Int], mask: [Bool])] = []
    for _ in 0..<batch { seqs.append(((0..<tokens).map { _ in rng.below(config.vocabSize) }, Array(repeating: true, count: tokens))) }
    let mb = TrainingBatch(sequences: seqs)
    let items = mb.targetCount
    let layerParams = config.numHiddenLayers * (config.hiddenSize * (config.qDim + 2 * config.kvDim) + config.qDim * config.hiddenSize
        + 3 * config.hiddenSize * config.intermediateSize)
    let matrixParams = Double(layerParams + config.vocabSize * config.hiddenSize)
    let flops = 4 * matrixParams * Double(batch * tokens)

    var ours: [(ComputePrecision, seconds: Double, planned: Int, products: Double)] = []
    for precision in precisions {
        let params = try LoRAParameters(config: settings.lora, model: config)
        params.initializePEFT(seed: 0)
        let model = try LoRATrainingModel(weights: weights, parameters: params, maxRows: batch * tokens, maxSequence: tokens,
                                          recompute: settings.recompute, precision: precision)
        let opt = AdamW(count: params.count, weightDecay: 0.01)
        func step() throws {
            params.grads.fill(0)
            try model.accumulateGradients(mb, normalizer: items)
            clipGradientNorm(params.grads.pointer, count: params.count, maxNorm: 1)
            opt.update(params: params.values.pointer, grads: params.grads.pointer, count: params.count, lr: 1e-5)
        }
        let t = try bestTime(repeats: steps) { try step() }
        let products = frozenProductSeconds(weights, rows: batch * tokens, precision: precision)
        ours.append((precision, t, model.plannedBytes, products))
    }
    let rss = Double(peakRSSBytes()) / 1e9
    print("threads \(BLAS.threads); ceilings: sgemm \(fmt(ceiling)) GFLOP/s, f32 FMA peak \(fmt(fmaPeak)), bf16 dot peak "
        + (dotPeak > 0 ? fmt(dotPeak) : "- (no AVX512_BF16)") + "; activations planned \(ours[0].planned / 1_048_576) MiB, recompute \(settings.recompute)")
    var torch: [(String, Double, Double, Double)] = []
    if !args.contains("--no-torch") {
        for dtype in ["float32", "bfloat16"] {
            if let r = runTorchStep(dir: dir, dtype: dtype, batch: batch, tokens: tokens) {
                torch.append(("PyTorch+PEFT \(dtype)", r.seconds, r.tokensPerSecond, r.rss))
            } else {
                print("PyTorch+PEFT \(dtype): not available (python3 with torch, transformers, peft needed); skipped")
            }
        }
    }
    let torchF32 = torch.first { $0.0.hasSuffix("float32") }, torchBF16 = torch.first { $0.0.hasSuffix("bfloat16") }
    var table = Table("implementation", "s/step", "tokens/s", "vs torch f32", "vs torch bf16", "peak RSS GB", "model GFLOP/s",
                      "of sgemm", "frozen products GFLOP/s", "of peak")
    func ratio(_ tps: Double, _ ref: (String, Double, Double, Double)?) -> String { ref.map { fmt(tps / $0.2, 2) + "x" } ?? "-" }
    for o in ours {
        let tps = Double(batch * tokens) / o.seconds
        let productRate = flops / o.products / 1e9
        let peak = o.0 == .bf16 && weightType == .bf16 ? dotPeak : fmaPeak
        table.add("misalign (\(weightType.rawValue) weights, \(o.0.rawValue) products)", fmt(o.seconds, 2), fmt(tps), ratio(tps, torchF32),
                  ratio(tps, torchBF16), fmt(rss, 2), fmt(flops / o.seconds / 1e9), fmt(100 * flops / o.seconds / 1e9 / ceiling) + "%",
                  fmt(productRate), peak > 0 ? fmt(100 * productRate / peak) + "% of " + (peak == dotPeak ? "bf16 dot" : "FMA") : "-")
    }
    for (name, s, tps, r) in torch {
        table.add(name, fmt(s, 2), fmt(tps), ratio(tps, torchF32), ratio(tps, torchBF16), fmt(r, 2), fmt(flops / s / 1e9),
                  fmt(100 * flops / s / 1e9 / ceiling) + "%", "-", "-")
    }
    table.print()
    print("peak RSS is the process's (both arithmetics ran in it); frozen products: the step's x W^T and dy W alone, same shapes")
    print("load average after: \(loadAverage())")
}

/// Seconds (best of 3) of one training step's frozen products alone, as the training model runs
/// them: per layer the forward's q/k/v and gate/up groups, o and down, and the backward's
/// input gradients (down, gate + up, o, q + k + v); the LM head forward and backward on
/// 128-row chunks. Inputs are random; the shapes are the step's.
private func frozenProductSeconds(_ w: Qwen2Weights, rows n: Int, precision: ComputePrecision) -> Double {
    let c = w.config, H = c.hiddenSize, I = c.intermediateSize, V = c.vocabSize, chunk = 128
    var rng = SplitMix64(seed: 3)
    let x = FloatBuffer(shape: [n * max(I, c.qDim)], zeroed: false), y = FloatBuffer(shape: [n * max(I, c.qDim)], zeroed: false)
    let y2 = FloatBuffer(shape: [n * I], zeroed: false), y3 = FloatBuffer(shape: [n * c.kvDim], zeroed: false)
    let logits = FloatBuffer(shape: [chunk * V], zeroed: false)
    rng.fill(x); rng.fill(logits)
    let scratch = FloatBuffer(shape: [max(1, ([w.lmHead] + w.layers.flatMap { l in LoRAModule.allCases.map { l.linear($0) } }).map(\.trainingScratchCount).max()!)], zeroed: false)
    let s = scratch.pointer, xp = x.pointer
    func group(_ ws: [(LinearWeight, UnsafeMutablePointer<Float>, Int)], ldx: Int) {
        if precision == .bf16 {
            LinearWeight.apply(group: ws.map { .init(weight: $0.0, y: $0.1, ldy: $0.2) }, x: xp, ldx: ldx, rows: n, scratch: s, precision: .bf16)
        } else {
            for (lw, yp, ld) in ws { lw.applyWide(x: xp, ldx: ldx, rows: n, y: yp, ldy: ld, scratch: s) }
        }
    }
    func back(_ ws: [(LinearWeight, Int)], dx: UnsafeMutablePointer<Float>, lddx: Int) {
        if precision == .bf16 {
            LinearWeight.applyTransposed(group: ws.map { .init(weight: $0.0, dy: xp, lddy: $0.1) }, rows: n, dx: dx, lddx: lddx,
                                         accumulate: false, scratch: s, precision: .bf16)
        } else {
            for (i, (lw, ld)) in ws.enumerated() { lw.applyTransposed(dy: xp, lddy: ld, rows: n, dx: dx, lddx: lddx, accumulate: i > 0, scratch: s) }
        }
    }
    return bestTime(repeats: 3) {
        for l in w.layers {
            group([(l.qProj, y.pointer, c.qDim), (l.kProj, y3.pointer, c.kvDim), (l.vProj, y3.pointer, c.kvDim)], ldx: H)
            l.oProj.applyWide(x: xp, ldx: c.qDim, rows: n, y: y.pointer, ldy: H, scratch: s, precision: precision)
            group([(l.gateProj, y.pointer, I), (l.upProj, y2.pointer, I)], ldx: H)
            l.downProj.applyWide(x: xp, ldx: I, rows: n, y: y.pointer, ldy: H, scratch: s, precision: precision)
            back([(l.downProj, H)], dx: y.pointer, lddx: I)
            back([(l.gateProj, I), (l.upProj, I)], dx: y.pointer, lddx: H)
            back([(l.oProj, H)], dx: y.pointer, lddx: c.qDim)
            back([(l.qProj, c.qDim), (l.kProj, c.kvDim), (l.vProj, c.kvDim)], dx: y.pointer, lddx: H)
        }
        var r0 = 0
        while r0 < n {
            let m = min(chunk, n - r0)
            w.lmHead.applyWide(x: xp, ldx: H, rows: m, y: logits.pointer, ldy: V, scratch: s, precision: precision)
            w.lmHead.applyTransposed(dy: logits.pointer, lddy: V, rows: m, dx: y.pointer, lddx: H, accumulate: false, scratch: s, precision: precision)
            r0 += m
        }
    }
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

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}
