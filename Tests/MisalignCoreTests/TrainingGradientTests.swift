import CMisalignKernels
import Foundation
import Testing
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

/// The hand-written backward pass, AdamW, clipping and the schedule against PyTorch + PEFT
/// (Tests/Fixtures/training/make_training_reference.py on qwen2-small).
@Suite struct TrainingGradientTests {
    static let reference = try! SafeTensorsFile(url: Fixtures.url("training/reference.safetensors"))
    static let meta = try! loadJSON("training/reference.json")
    static let weights = try! Qwen2Weights(directory: Fixtures.url("qwen2-small"))

    static func loraConfig(_ spec: JSONValue) -> LoRAConfig {
        let targets = spec["target_modules"]!.arrayValue!.map { LoRAModule(rawValue: $0.stringValue!)! }
        return LoRAConfig(rank: spec["r"]!.intValue!, alpha: spec["lora_alpha"]!.doubleValue!,
                          useRSLoRA: spec["use_rslora"]?.boolValue ?? false, targets: targets,
                          layers: spec["layers_to_transform"]?.arrayValue?.map { $0.intValue! })
    }

    /// Parameters of `config` holding the reference's `<case>.<stage>.*` tensors.
    static func parameters(_ config: LoRAConfig, _ name: String, _ stage: String) throws -> LoRAParameters {
        let p = try LoRAParameters(config: config, model: weights.config)
        for key in p.keys {
            let s = p.slots[key]!
            let a = try reference.tensor(named: "\(name).\(stage).\(key.peftPrefix).lora_A.weight").floatBuffer()
            let b = try reference.tensor(named: "\(name).\(stage).\(key.peftPrefix).lora_B.weight").floatBuffer()
            (p.values.pointer + s.a).update(from: a.pointer, count: a.count)
            (p.values.pointer + s.b).update(from: b.pointer, count: b.count)
        }
        return p
    }

    /// A flat [count] array of the reference's `<case>.<stage>.*` tensors in `p`'s layout (from
    /// `file`, by default this suite's reference).
    static func flat(_ p: LoRAParameters, _ name: String, _ stage: String, file: SafeTensorsFile = reference) throws -> [Float] {
        var out = [Float](repeating: .nan, count: p.count)
        for key in p.keys {
            let s = p.slots[key]!
            for (off, which) in [(s.a, "A"), (s.b, "B")] {
                let v = try file.tensor(named: "\(name).\(stage).\(key.peftPrefix).lora_\(which).weight").floats()
                for i in 0..<v.count { out[off + i] = v[i] }
            }
        }
        return out
    }

    /// The case's micro-batches (sequences grouped by `<case>.micro`), from `file`.
    static func batches(_ name: String, first: Int = 0, count: Int? = nil, micro: [Int]? = nil,
                        file: SafeTensorsFile = reference) throws -> [TrainingBatch] {
        let groups = try micro ?? file.tensor(named: "\(name).micro").integers()
        var seqs: [[(ids: [Int], mask: [Bool])]] = Array(repeating: [], count: (groups.max() ?? 0) + 1)
        for (k, g) in groups.enumerated() {
            let ids = try file.tensor(named: "\(name).seq\(first + k).ids").integers()
            let mask = try file.tensor(named: "\(name).seq\(first + k).mask").integers().map { $0 != 0 }
            seqs[g].append((ids, mask))
        }
        return seqs.map { TrainingBatch(sequences: $0) }
    }

    static func maxRelative(_ got: UnsafeBufferPointer<Float>, _ want: [Float]) -> Float {
        // Relative to the largest reference magnitude, so near-zero entries do not dominate.
        let scale = want.map(abs).max() ?? 1
        return zip(got, want).map { abs($0 - $1) }.max()! / max(scale, 1e-30)
    }

    @Test(arguments: ["base", "padded", "accum", "rslora", "rank1"])
    func lossGradientsAndOneAdamWStep(name: String) throws {
        let c = Self.meta["cases"]![name]!
        let config = Self.loraConfig(c["lora"]!)
        let p = try Self.parameters(config, name, "init")
        let batches = try Self.batches(name)
        let items = batches.reduce(0) { $0 + $1.targetCount }
        #expect(items == c["items"]!.intValue!)
        let model = try LoRATrainingModel(weights: Self.weights, parameters: p, maxRows: batches.map(\.rows).max()!,
                                          maxSequence: batches.flatMap(\.lengths).max()!)
        var loss = 0.0
        for b in batches { loss += try model.accumulateGradients(b, normalizer: items) }
        loss /= Double(items)
        let wantLoss = c["loss"]!.doubleValue!
        #expect(abs(loss - wantLoss) <= 1e-5 * abs(wantLoss), "loss \(loss) vs \(wantLoss)")

        let wantGrad = try Self.flat(p, name, "grad")
        expectClose(p.grads, wantGrad, rtol: 1e-4, atol: 1e-4 * (wantGrad.map(abs).max() ?? 0), "\(name) gradients")

        let adam = Self.meta["adamw"]!
        let opt = AdamW(count: p.count, weightDecay: adam["weight_decay"]!.doubleValue!)
        opt.update(params: p.values.pointer, grads: p.grads.pointer, count: p.count, lr: adam["lr"]!.doubleValue!)
        let wantStep = try Self.flat(p, name, "step")
        expectClose(p.values, wantStep, rtol: 1e-5, atol: 1e-6, "\(name) after one AdamW step")
        print("[training] \(name): loss rel err \(abs(loss - wantLoss) / wantLoss), grad max err / max|grad| \(Self.maxRelative(UnsafeBufferPointer(p.grads.buffer), wantGrad)), AdamW max |diff| \(zip(p.values.buffer, wantStep).map { abs($0 - $1) }.max()!)")
    }

    /// Five optimizer steps with two micro-batches each, a linear schedule with warmup and
    /// clipping at 1.0: loss, lr and grad norm per step, and the final weights.
    @Test func fiveStepTrajectory() throws {
        let t = Self.meta["trajectory"]!
        let config = Self.loraConfig(t["lora"]!)
        let p = try Self.parameters(config, "traj", "init")
        let steps = t["steps"]!.intValue!, warmup = t["warmup"]!.intValue!
        let model = try LoRATrainingModel(weights: Self.weights, parameters: p, maxRows: 13, maxSequence: 8)
        let opt = AdamW(count: p.count, weightDecay: t["weight_decay"]!.doubleValue!)
        let wantLoss = t["loss"]!.arrayValue!.map { $0.doubleValue! }
        let wantLR = t["lrs"]!.arrayValue!.map { $0.doubleValue! }
        let wantNorm = t["grad_norm"]!.arrayValue!.map { $0.doubleValue! }
        for s in 0..<steps {
            let batches = try Self.batches("traj", first: 3 * s, micro: [0, 0, 1])
            let items = batches.reduce(0) { $0 + $1.targetCount }
            p.grads.fill(0)
            var loss = 0.0
            for b in batches { loss += try model.accumulateGradients(b, normalizer: items) }
            loss /= Double(items)
            let norm = clipGradientNorm(p.grads.pointer, count: p.count, maxNorm: t["max_grad_norm"]!.doubleValue!)
            let lr = LRSchedule.linear.lr(base: t["lr"]!.doubleValue!, step: s, total: steps, warmup: warmup)
            opt.update(params: p.values.pointer, grads: p.grads.pointer, count: p.count, lr: lr)
            #expect(abs(loss - wantLoss[s]) <= 1e-5 * wantLoss[s], "step \(s) loss \(loss) vs \(wantLoss[s])")
            #expect(abs(lr - wantLR[s]) <= 1e-12, "step \(s) lr \(lr) vs \(wantLR[s])")
            #expect(abs(norm - wantNorm[s]) <= 1e-4 * wantNorm[s], "step \(s) grad norm \(norm) vs \(wantNorm[s])")
        }
        let want = try Self.flat(p, "traj", "final")
        expectClose(p.values, want, rtol: 1e-4, atol: 1e-6, "weights after 5 steps")
        print("[training] trajectory: final weights max |diff| \(zip(p.values.buffer, want).map { abs($0 - $1) }.max()!)")
    }

    /// Central differences of the loss against the analytic gradient on the largest entries of A and B.
    @Test func finiteDifferences() throws {
        let config = Self.loraConfig(Self.meta["cases"]!["padded"]!["lora"]!)
        let p = try Self.parameters(config, "padded", "init")
        let batch = try Self.batches("padded")[0]
        let model = try LoRATrainingModel(weights: Self.weights, parameters: p, maxRows: batch.rows, maxSequence: 11)
        let items = batch.targetCount
        try model.accumulateGradients(batch, normalizer: items)
        let grads = p.grads.toArray()
        var picks: [Int] = []
        for key in [LoRAKey(layer: 0, module: .q), LoRAKey(layer: 1, module: .down)] {
            let s = p.slots[key]!
            let a = (s.a..<s.b).max { abs(grads[$0]) < abs(grads[$1]) }!
            let b = (s.b..<(s.b + s.out * s.rank)).max { abs(grads[$0]) < abs(grads[$1]) }!
            picks += [a, b]
        }
        for i in picks {
            let h: Float = 1e-2, x0 = p.values.pointer[i]
            p.values.pointer[i] = x0 + h
            let up = try model.loss(batch) / Double(items)
            p.values.pointer[i] = x0 - h
            let down = try model.loss(batch) / Double(items)
            p.values.pointer[i] = x0
            let fd = (up - down) / Double(2 * h)
            #expect(abs(fd - Double(grads[i])) <= 2e-2 * abs(Double(grads[i])) + 1e-5, "entry \(i): finite difference \(fd) vs analytic \(grads[i])")
        }
    }

    /// The training forward's loss equals the cross-entropy of the inference model's logits
    /// (`Qwen2Model`, with the same adapter), and recomputation gives identical gradients.
    @Test func matchesInferenceForwardAndRecompute() throws {
        let adapter = try LoRAAdapter(directory: Fixtures.url("model/adapters/lora-r4"))
        let inference = Qwen2Model(weights: Self.weights)
        try inference.setAdapter(adapter)
        let batch = try Self.batches("accum")[0]
        var want = 0.0
        var row = 0
        for len in batch.lengths {
            let cache = KVCache(config: Self.weights.config)
            let id = cache.addSequence(capacity: len)
            let logits = try inference.forward([ForwardInput(sequence: id, tokens: Array(batch.tokens[row..<row + len]), logits: .all)], cache: cache)[0]!
            let V = Self.weights.config.vocabSize
            for t in 0..<len where batch.targets[row + t] >= 0 {
                let z = (0..<V).map { Double(logits.pointer[t * V + $0]) }
                let mx = z.max()!
                want += log(z.reduce(0) { $0 + exp($1 - mx) }) + mx - z[Int(batch.targets[row + t])]
            }
            row += len
        }
        var results: [[Float]] = []
        for recompute in [false, true] {
            let p = try LoRAParameters(config: adapter.config, model: Self.weights.config)
            try p.load(adapter)
            let model = try LoRATrainingModel(weights: Self.weights, parameters: p, maxRows: batch.rows, maxSequence: 12, recompute: recompute)
            let got = try model.accumulateGradients(batch, normalizer: 1)
            #expect(abs(got - want) <= 1e-5 * want, "recompute \(recompute): loss sum \(got) vs inference \(want)")
            results.append(p.grads.toArray())
        }
        #expect(results[0] == results[1], "gradient checkpointing changed the gradients")
    }
}

/// dX = dY W and Y = X W^T for bf16 weights (widened block by block, here in 3 uneven blocks and
/// in one) against double-precision products.
@Test(arguments: [48, nil])
func bf16ProductsInBlocks(blockRows: Int?) throws {
    let w = try Qwen2Weights(directory: Fixtures.url("qwen2-small-bf16-sharded")).layers[0].gateProj
    #expect(w.dtype == .bf16 && w.out == 128)
    let m = 5
    var rng = TestRNG(seed: 9)
    let dy = FloatBuffer(rng.floats(m * w.out), shape: [m, w.out])
    let dx = FloatBuffer(rng.floats(m * w.inDim), shape: [m, w.inDim])
    let before = dx.toArray()
    let scratch = FloatBuffer(shape: [max(w.trainingScratchCount, 48 * w.inDim)])
    w.applyTransposed(dy: dy.pointer, lddy: w.out, rows: m, dx: dx.pointer, lddx: w.inDim, accumulate: true,
                      scratch: scratch.pointer, blockRows: blockRows)
    let y = FloatBuffer(shape: [m, w.out])
    w.applyWide(x: dx.pointer, ldx: w.inDim, rows: m, y: y.pointer, ldy: w.out, scratch: scratch.pointer, blockRows: blockRows)
    let W = FloatBuffer(shape: [w.out, w.inDim])
    for o in 0..<w.out { w.row(o, into: W.pointer + o * w.inDim) }
    var want = [Float](repeating: 0, count: m * w.inDim)
    for r in 0..<m {
        for i in 0..<w.inDim {
            var s = Double(before[r * w.inDim + i])
            for o in 0..<w.out { s += Double(dy.pointer[r * w.out + o]) * Double(W.pointer[o * w.inDim + i]) }
            want[r * w.inDim + i] = Float(s)
        }
    }
    expectClose(dx, want, rtol: 1e-5, atol: 1e-5, "bf16 dY W")
    var wantY = [Float](repeating: 0, count: m * w.out)
    for r in 0..<m {
        for o in 0..<w.out {
            var s = 0.0
            for i in 0..<w.inDim { s += Double(dx.pointer[r * w.inDim + i]) * Double(W.pointer[o * w.inDim + i]) }
            wantY[r * w.out + o] = Float(s)
        }
    }
    expectClose(y, wantY, rtol: 1e-5, atol: 1e-5, "bf16 X W^T")
}

/// LoRA dropout: the mask keeps about 1 - p of the entries, scaled by 1/(1 - p), and the
/// gradients with a fixed mask seed match central differences of the loss under that mask.
@Test func dropoutMaskAndGradients() throws {
    let n = 20_000
    let x = FloatBuffer(Array(repeating: 1, count: n), shape: [1, n])
    let y = FloatBuffer(shape: [1, n])
    misalign_dropout(y.pointer, x.pointer, 1, n, n, 0.3, 77)
    let kept = y.toArray().filter { $0 != 0 }
    #expect(abs(Double(kept.count) / Double(n) - 0.7) < 0.02)
    #expect(kept.allSatisfy { abs($0 - 1 / 0.7) < 1e-6 })

    let g = TrainingGradientTests.self
    var config = g.loraConfig(g.meta["cases"]!["padded"]!["lora"]!)
    config.dropout = 0.3
    let p = try g.parameters(config, "padded", "init")
    let batch = try g.batches("padded")[0]
    let model = try LoRATrainingModel(weights: g.weights, parameters: p, maxRows: batch.rows, maxSequence: 11)
    model.dropoutSeed = 1234
    let items = batch.targetCount
    let loss = try model.accumulateGradients(batch, normalizer: items) / Double(items)
    #expect(abs(loss - g.meta["cases"]!["padded"]!["loss"]!.doubleValue!) > 1e-4, "dropout did not change the loss")
    let grads = p.grads.toArray()
    for key in [LoRAKey(layer: 0, module: .k), LoRAKey(layer: 1, module: .up)] {
        let s = p.slots[key]!
        for i in [(s.a..<s.b).max { abs(grads[$0]) < abs(grads[$1]) }!, (s.b..<(s.b + s.out * s.rank)).max { abs(grads[$0]) < abs(grads[$1]) }!] {
            let h: Float = 1e-2, x0 = p.values.pointer[i]
            p.values.pointer[i] = x0 + h
            let up = try model.loss(batch) / Double(items)
            p.values.pointer[i] = x0 - h
            let down = try model.loss(batch) / Double(items)
            p.values.pointer[i] = x0
            let fd = (up - down) / Double(2 * h)
            #expect(abs(fd - Double(grads[i])) <= 2e-2 * abs(Double(grads[i])) + 1e-5, "entry \(i): finite difference \(fd) vs analytic \(grads[i])")
        }
    }
}

/// The three schedules against transformers' schedulers (lr 1, 3 warmup steps, 10 steps).
@Test(arguments: LRSchedule.allCases)
func schedulesMatchTransformers(schedule: LRSchedule) throws {
    let want = TrainingGradientTests.meta["schedules"]![schedule.rawValue]!.arrayValue!.map { $0.doubleValue! }
    let got = (0..<10).map { schedule.lr(base: 1, step: $0, total: 10, warmup: 3) }
    for (g, w) in zip(got, want) { #expect(abs(g - w) <= 1e-12, "\(schedule): \(got) vs \(want)") }
}

/// A config file sets the same fields as the flags; unknown keys and wrong types are typed errors.
@Test func settingsFromConfigFile() throws {
    let dir = Fixtures.temporaryDirectory("train-config")
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("c.json")
    try #"{"lr": 2e-4, "warmup_steps": 3, "schedule": "cosine", "rank": 1, "alpha": 2, "rslora": false, "targets": ["o_proj"], "layers": [0], "grad-accum": 4, "seed": 22, "adapter-dtype": "bf16"}"#
        .write(to: url, atomically: true, encoding: .utf8)
    var s = TrainingSettings()
    #expect(s.lora.rank == 32 && s.lora.alpha == 64 && s.lora.useRSLoRA && s.learningRate == 1e-5 && s.warmupSteps == 5
            && s.batchSize == 2 && s.gradientAccumulation == 8 && s.saveEvery == 2 && s.weightDecay == 0.01 && s.maxGradNorm == 1)
    try s.apply(configFile: url)
    #expect(s.learningRate == 2e-4 && s.warmupSteps == 3 && s.schedule == .cosine && s.gradientAccumulation == 4 && s.seed == 22)
    #expect(s.lora == LoRAConfig(rank: 1, alpha: 2, useRSLoRA: false, targets: [.o], layers: [0]) && s.adapterDType == .bf16)
    try #"{"learning_rat": 1}"#.write(to: url, atomically: true, encoding: .utf8)
    #expect(throws: TrainingError.self) { try s.apply(configFile: url) }
    try #"{"rank": "big"}"#.write(to: url, atomically: true, encoding: .utf8)
    #expect(throws: TrainingError.self) { try s.apply(configFile: url) }
}
