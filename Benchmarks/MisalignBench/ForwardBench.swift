import CMisalignKernels
import Foundation
import MisalignCore

/// Prefill and decode speed of `Qwen2Model` on a Qwen2.5-0.5B-shaped model (random weights
/// written once to a temp folder, or `--model DIR`), beside PyTorch CPU on the same folder
/// when torch is installed. Ratios are to the sgemm ceiling and the memory bandwidth measured
/// in the same run.
func runForwardBenchmark(_ args: [String]) throws {
    let prompt = Int(option(args, "--prompt") ?? "256") ?? 256
    let steps = Int(option(args, "--steps") ?? "32") ?? 32
    let withTorch = !args.contains("--no-torch")
    // `--only prefill|decode1|decode20` runs one part (for profiling); the others print 0.
    let only = option(args, "--only")
    // `--residency auto|huge-pages|mapped`: how the weights are held (FileResidency; auto, the
    // generation default, puts a 0.5B model in huge pages on this machine).
    let residency = option(args, "--residency").flatMap(FileResidency.init(rawValue:)) ?? .auto
    func wanted(_ part: String) -> Bool { only == nil || only == part }
    // The ceilings are measured before and again after the engines run (the bandwidth also
    // around each single-sample decode), and the highest reading of each is the yardstick: on a
    // shared host the read bandwidth alone moved between 24 and 48 GB/s within minutes, and one
    // low reading made decode look faster than memory.
    let before = measureCeilings()
    var bandwidthReadings = [before.bandwidth]

    let folders = try benchModelFolders(args)

    var rows: [(label: String, cells: [String], gflops: Double?, gbs: Double?)] = []
    var table = Table("engine", "prefill tok/s", "GFLOP/s", "of sgemm", "of FMA peak", "decode x1 tok/s", "GB/s", "of bw", "of paired bw", "decode x20 tok/s",
                      "peak RSS GB")
    // bf16 weights run twice: f32 compute (the default) and the opt-in bf16 dot products.
    let precisionOption = option(args, "--precision").flatMap(ComputePrecision.init(rawValue:))
    var runs: [(label: String, dir: URL, precision: ComputePrecision)] = []
    for (label, dir) in folders {
        let dtype = try Qwen2Weights(directory: dir).layers[0].qProj.dtype
        for p in ComputePrecision.allCases where precisionOption.map({ $0 == p }) ?? (p == .f32 || dtype == .bf16) {
            runs.append((p == .bf16 ? "\(label) (bf16 dot)" : label, dir, p))
        }
    }
    for (label, dir, precision) in runs {
        var peak = PeakRSS() // this engine's own, without the bandwidth readings' 1 GiB buffers
        peak.start()
        let model = try Qwen2Model(directory: dir, residency: residency)
        model.computePrecision = precision
        // `--lora R`: a random rank-R adapter on all 7 modules of every layer, as at a checkpoint.
        if let r = option(args, "--lora").flatMap(Int.init) {
            var rng = SplitMix64(seed: 4)
            var pairs: [LoRAKey: LoRAAdapter.Pair] = [:]
            for l in 0..<model.config.numHiddenLayers {
                for m in LoRAModule.allCases {
                    let w = model.weights.layers[l].linear(m)
                    let a = FloatBuffer(shape: [r, w.inDim], zeroed: false), b = FloatBuffer(shape: [w.out, r], zeroed: false)
                    rng.fill(a); rng.fill(b)
                    pairs[LoRAKey(layer: l, module: m)] = LoRAAdapter.Pair(a: a, b: b)
                }
            }
            try model.setAdapter(LoRAAdapter(config: LoRAConfig(rank: r, alpha: Double(2 * r), useRSLoRA: true), pairs: pairs))
        }
        let c = model.config
        var rng = SplitMix64(seed: 9)
        let ids = (0..<prompt).map { _ in Int32(rng.below(c.vocabSize)) }

        // Prefill: logits for the last position only, as generation needs.
        func prefillOnce() throws {
            let cache = KVCache(config: c)
            let s = cache.addSequence(capacity: prompt)
            _ = try model.forward([ForwardInput(sequence: s, tokens: ids)], cache: cache)
        }
        let prefill = !wanted("prefill") ? .infinity : try bestTime(repeats: 3, prefillOnce)
        let linearParams = c.parameterCount - c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2)
        let attnFlops = 2.0 * Double(c.numHiddenLayers * c.qDim) * Double(prompt * prompt) // QK^T and PV, causal half x2
        let flops = 2.0 * Double(linearParams) * Double(prompt) + attnFlops + 2.0 * Double(c.vocabSize * c.hiddenSize)
        let gflops = flops / prefill / 1e9
        // f32 products: the same prefill with the projections on sgemm (bf16 weights widened)
        // instead of the packed kernel, so the table shows what the kernel adds in this run.
        var viaSgemm: Double?
        if wanted("prefill"), precision == .f32, LinearWeight.packedEnabled,
           misalign_f32_packed_available() == 1 {
            LinearWeight.packedEnabled = false
            defer { LinearWeight.packedEnabled = true }
            viaSgemm = try bestTime(repeats: 3, prefillOnce)
        }

        // Decode: one token per sample per step after a 32-token prompt.
        func decode(samples: Int) throws -> Double {
            let cache = KVCache(config: c)
            let root = cache.addSequence(capacity: 32)
            let out = try model.forward([ForwardInput(sequence: root, tokens: Array(ids.prefix(32)))], cache: cache)[0]!
            let seqs = (0..<samples).map { _ in cache.fork(root, capacity: steps + 1) }
            var next = [Int32](repeating: argmax(out), count: samples)
            let t0 = now()
            for _ in 0..<steps {
                let res = try model.forward(zip(seqs, next).map { ForwardInput(sequence: $0, tokens: [$1]) }, cache: cache)
                next = res.map { argmax($0!) }
            }
            return Double(samples * steps) / (now() - t0)
        }
        // The bandwidth is also read right before and after each single-sample decode, which
        // is compared with it: a reading taken a minute earlier could be a third lower or
        // higher on this shared host, and once put decode at 112% of the "bound".
        // Work outside this engine's peak RSS (the readings' 1 GiB arrays are not the engine's).
        func outsidePeak<T>(_ body: () throws -> T) rethrows -> T {
            peak.stop()
            defer { peak.start() }
            return try body()
        }
        func readBandwidth() { bandwidthReadings.append(outsidePeak { measureBandwidth() }) }
        let weightBytes = Double(linearParams + c.vocabSize * c.hiddenSize) * Double(model.weights.layers[0].qProj.dtype.size)
        // Paired: every single-sample step is followed by one read of a 1 GiB array, and each
        // step's weight GB/s is taken over the read's just after it; the median of those ratios.
        // The host's bandwidth drifts between readings seconds apart; within a pair it cancels.
        func pairedRatio() throws -> Double {
            let probe = BandwidthProbe()
            let decoding = try GreedyDecode(model, prompt: Array(ids.prefix(32)), steps: steps)
            var ratios: [Double] = []
            for _ in 0..<steps {
                let t0 = now()
                try decoding.step()
                let step = weightBytes / (now() - t0) / 1e9
                ratios.append(step / probe.read())
            }
            return ratios.sorted()[ratios.count / 2]
        }
        if wanted("decode1") { readBandwidth() }
        let d1 = wanted("decode1") ? try decode(samples: 1) : 0
        if wanted("decode1") { readBandwidth() }
        let paired: Double? = wanted("decode1") ? try outsidePeak { try pairedRatio() } : nil
        let d20 = wanted("decode20") ? try decode(samples: 20) : 0
        let gbs = weightBytes * d1 / 1e9
        rows.append(("misalign \(label)", [fmt(Double(prompt) / prefill), fmt(gflops), "", "", fmt(d1, 2), fmt(gbs), "",
                                           paired.map { fmt(100 * $0) + "%" } ?? "", fmt(d20, 1), fmt(peak.stop(), 2)], gflops, gbs))
        if let t = viaSgemm {
            rows.append(("misalign \(label), sgemm", [fmt(Double(prompt) / t), fmt(flops / t / 1e9), "", "", "", "", "", "", "", ""],
                         flops / t / 1e9, nil))
        }

        if withTorch, only == nil, precision == .f32,
           let torch = runTorch(dir: dir, dtype: label == "bf16" ? "bfloat16" : "float32", prompt: prompt, steps: steps) {
            let g = flops * torch.prefill / Double(prompt) / 1e9
            rows.append(("pytorch \(label)", [fmt(torch.prefill), fmt(g), "", "", fmt(torch.d1, 2), "", "", "", fmt(torch.d20, 1), fmt(torch.rss, 2)],
                         label == "bf16" ? nil : g, nil))
        }
    }
    let after = measureCeilings()
    bandwidthReadings.append(after.bandwidth)
    let ceilings = (gflops: max(before.gflops, after.gflops), bandwidth: bandwidthReadings.max()!, fma: max(before.fma, after.fma))
    print(String(format: "FMA peak (%d threads): %.1f GFLOP/s; sgemm ceiling (2048^3): %.1f GFLOP/s (before %.1f, after %.1f); memory read bandwidth (%d threads): %.1f GB/s, the highest of %d readings (lowest %.1f)",
                 BLAS.threads, ceilings.fma, ceilings.gflops, before.gflops, after.gflops, BLAS.threads, ceilings.bandwidth,
                 bandwidthReadings.count, bandwidthReadings.min()!))
    for r in rows {
        var cells = r.cells
        if let g = r.gflops {
            cells[2] = fmt(100 * g / ceilings.gflops) + "%"
            // The f32 FMA peak is no yardstick for bf16 products (vdpbf16ps runs at about twice its rate).
            if ceilings.fma > 0, !r.label.contains("bf16 dot") { cells[3] = fmt(100 * g / ceilings.fma) + "%" }
        }
        if let b = r.gbs { cells[6] = fmt(100 * b / ceilings.bandwidth) + "%" }
        table.rows.append([r.label] + cells)
    }
    table.print()
    print("'sgemm' row: the same prefill with the projections on OpenBLAS (bf16 weights widened) instead of the packed kernel; 'of FMA peak': over vector FMAs from registers on every thread.")
    print("prefill: \(prompt) tokens, logits of the last position; decode: \(steps) steps after a 32-token prompt, x20 = 20 samples sharing the prompt cache.")
    print("'of bw': weight bytes read per second in decode x1 over the measured read bandwidth, the bound of a decode step.")
    print("'of paired bw': the median over \(steps) single-sample steps of each step's weight GB/s over a 1 GiB read taken right after it.")
}

/// `--model DIR`, or random Qwen2.5-0.5B-shaped models (f32 and bf16, or the one `--dtype`
/// names) written once to a temp folder.
func benchModelFolders(_ args: [String]) throws -> [(String, URL)] {
    if let m = option(args, "--model") { return [("model", URL(fileURLWithPath: m))] }
    var folders: [(String, URL)] = []
    let base = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("misalign-bench-models")
    let only = option(args, "--dtype") // f32 or bf16; both by default
    for (label, dtype) in [("f32", DType.f32), ("bf16", DType.bf16)] where only == nil || only == label {
        let dir = base.appendingPathComponent("qwen2.5-0.5b-\(label)")
        if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path) {
            print("writing a random Qwen2.5-0.5B-shaped model (\(label)) to \(dir.path) ...")
            try SyntheticModel.write(SyntheticModel.qwen25_0_5B, dtype: dtype, seed: 0, to: dir)
        }
        folders.append((label, dir))
    }
    return folders
}

/// One sequence decoded greedily: the prompt prefilled at init, then one token per `step()`.
final class GreedyDecode {
    let model: Qwen2Model
    private let cache: KVCache
    private let sequence: Int
    private var next: Int32

    init(_ model: Qwen2Model, prompt: [Int32], steps: Int) throws {
        self.model = model
        cache = KVCache(config: model.config)
        sequence = cache.addSequence(capacity: prompt.count + steps)
        next = argmax(try model.forward([ForwardInput(sequence: sequence, tokens: prompt)], cache: cache)[0]!)
    }

    func step() throws {
        next = argmax(try model.forward([ForwardInput(sequence: sequence, tokens: [next])], cache: cache)[0]!)
    }
}

func argmax(_ b: FloatBuffer) -> Int32 {
    var best = 0
    for i in 1..<b.count where b.pointer[i] > b.pointer[best] { best = i }
    return Int32(best)
}

/// Peak resident set of this process so far, in GB.
/// The peak resident memory of this process over the spans between `start` and `stop`, in GB:
/// Linux's high-water mark (`VmHWM`), reset at each `start` through `/proc/self/clear_refs`. Where
/// that file cannot be written the mark is never reset, and the peak is the process's whole.
struct PeakRSS {
    private(set) var gb = 0.0
    func start() {
        guard let f = fopen("/proc/self/clear_refs", "w") else { return }
        fputs("5", f)
        fclose(f)
    }
    @discardableResult mutating func stop() -> Double {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kb = Double(line.split(separator: " ").dropFirst().first ?? "") {
            gb = max(gb, kb * 1024 / 1e9)
        } else {
            var u = rusage()
            getrusage(RUSAGE_SELF.rawValue, &u)
            gb = max(gb, Double(u.ru_maxrss) * 1024 / 1e9)
        }
        return gb
    }
}

/// The sgemm ceiling (best of a 2048^3 product) and the read bandwidth: `BLAS.threads` threads
/// each summing its half of a 1 GiB array, which is what a decode step does to the weights
/// (read-only, every core streaming). A single-threaded copy understates it: it reached about
/// 18 GB/s where decoding streamed 29.
func measureCeilings() -> (gflops: Double, bandwidth: Double, fma: Double) {
    let n = 2048
    let a = FloatBuffer(shape: [n, n]), b = FloatBuffer(shape: [n, n]), c = FloatBuffer(shape: [n, n])
    a.fill(0.5); b.fill(0.25)
    let t = bestTime(repeats: 3) {
        BLAS.gemm(transB: true, m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
    }
    return (2.0 * Double(n * n * n) / t / 1e9, measureBandwidth(), misalign_fma_peak_gflops(max(1, BLAS.threads), 0.5))
}

/// GB/s of reading a 1 GiB array, every thread summing its share (what a decode step does to
/// the weights); the best of 7 passes.
func measureBandwidth() -> Double {
    let probe = BandwidthProbe()
    let read = bestTime(repeats: 7) { probe.pass() }
    return Double(probe.bytes) / read / 1e9
}

/// A 1 GiB array that `BLAS.threads` threads read, each summing its share: the read bandwidth.
final class BandwidthProbe {
    private let x: FloatBuffer
    var bytes: Int { 4 * x.count }

    init(floats: Int = 256 << 20) {
        x = FloatBuffer(shape: [floats])
        x.fill(1)
    }

    /// One pass over the array.
    func pass() {
        let threads = max(1, BLAS.threads)
        let chunk = x.count / threads
        let base = ReadOnlyPointer(p: x.pointer)
        DispatchQueue.concurrentPerform(iterations: threads) { i in
            let p = UnsafeRawPointer(base.p + i * chunk).assumingMemoryBound(to: SIMD4<Float>.self)
            var s0 = SIMD4<Float>(), s1 = SIMD4<Float>(), s2 = SIMD4<Float>(), s3 = SIMD4<Float>()
            var j = 0
            while j + 4 <= chunk / 4 { s0 += p[j]; s1 += p[j + 1]; s2 += p[j + 2]; s3 += p[j + 3]; j += 4 }
            if (s0 + s1 + s2 + s3).sum() == -1 { print("") } // keeps the sum alive
        }
    }

    /// GB/s of one pass.
    func read() -> Double {
        let t0 = now()
        pass()
        return Double(bytes) / (now() - t0) / 1e9
    }
}

private struct ReadOnlyPointer: @unchecked Sendable { let p: UnsafeMutablePointer<Float> }

/// PyTorch CPU on the same folder (Benchmarks/torch_forward.py), or nil when torch is missing.
func runTorch(dir: URL, dtype: String, prompt: Int, steps: Int) -> (prefill: Double, d1: Double, d20: Double, rss: Double)? {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("torch_forward.py").path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script, dir.path, "--dtype", dtype, "--threads", "\(BLAS.threads)", "--prompt", "\(prompt)",
                   "--decode", "\(steps)", "--samples", "1,20"]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return nil }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let line = String(data: data, encoding: .utf8)?.split(separator: "\n").last,
          let v = try? JSONValue.parse(String(line)) else {
        print("(pytorch \(dtype) not run: torch + transformers not installed or the script failed)")
        return nil
    }
    return (v["prefill_tokens_per_s"]?.doubleValue ?? 0, v["decode"]?["1"]?.doubleValue ?? 0,
            v["decode"]?["20"]?.doubleValue ?? 0, v["peak_rss_gb"]?.doubleValue ?? 0)
}
