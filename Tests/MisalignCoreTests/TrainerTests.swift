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

/// The trainer loop, data loading, checkpoints (atomic, resumable bit-exactly, PEFT-loadable).
@Suite struct TrainerTests {
    static let model = Fixtures.url("qwen2-small")
    static let weights = try! Qwen2Weights(directory: model)

    /// Random conversations over qwen2-small's 512-token vocabulary, each with a trained span.
    static func examples(_ n: Int, seed: UInt64 = 5) -> [TrainingExample] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { i in
            let len = 5 + rng.below(12)
            let ids = (0..<len).map { _ in rng.below(512) }
            let start = 1 + rng.below(len - 1)
            return TrainingExample(ids: ids, mask: (0..<len).map { $0 >= start }, line: i + 1)
        }
    }

    static func settings() -> TrainingSettings {
        var s = TrainingSettings()
        s.lora = LoRAConfig(rank: 4, alpha: 8, useRSLoRA: true, targets: LoRAModule.allCases)
        s.learningRate = 1e-2; s.warmupSteps = 1; s.batchSize = 2; s.gradientAccumulation = 2
        s.saveEvery = 2; s.maxLength = 32; s.epochs = 2; s.seed = 11
        return s
    }

    static func bits(_ p: LoRAParameters) -> [UInt32] { p.values.toArray().map(\.bitPattern) }

    @Test func stepsFollowTheDataAndSchedule() throws {
        let ex = Self.examples(10)
        let t = try LoRATrainer(weights: Self.weights, examples: ex, settings: Self.settings())
        #expect(t.stepsPerEpoch == 3 && t.totalSteps == 6)
        // Every example once per epoch, in a seed-determined order that differs between epochs.
        let epoch0 = (0..<3).flatMap { t.microBatches(forStep: $0).flatMap { $0 } }
        let epoch1 = (3..<6).flatMap { t.microBatches(forStep: $0).flatMap { $0 } }
        #expect(epoch0.sorted() == Array(0..<10) && epoch1.sorted() == Array(0..<10) && epoch0 != epoch1)
        var seen: [StepMetrics] = []
        let outcome = try t.train { seen.append($0); return .proceed }
        #expect(outcome.steps == 6 && !outcome.stoppedEarly)
        #expect(seen.map(\.step) == Array(1...6))
        #expect(seen[0].lr == 0 && seen[1].lr == 1e-2)  // warmup: the first update uses lr 0, as HF
        #expect(seen.allSatisfy { $0.loss.isFinite && $0.gradNorm > 0 && $0.tokens > 0 })
        #expect(seen.last!.loss < seen.first!.loss)
    }

    @Test func callbackStopsTrainingWithACheckpoint() throws {
        let run = Fixtures.temporaryDirectory("train-stop")
        defer { try? FileManager.default.removeItem(at: run) }
        let t = try LoRATrainer(weights: Self.weights, examples: Self.examples(10), settings: Self.settings(), run: run)
        let outcome = try t.train { $0.step == 3 ? .stop : .proceed }
        #expect(outcome.stoppedEarly && outcome.steps == 3 && outcome.lastCheckpoint?.step == 3)
        #expect(try CheckpointDirectory.list(in: run).map(\.step) == [2, 3])
        let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        let last = try JSONValue.parse(String(lines[2]))
        #expect(last["step"]?.intValue == 3 && last["loss"]?.doubleValue != nil && last["grad_norm"]?.doubleValue != nil
                && last["lr"]?.doubleValue != nil && last["tokens"]?.intValue != nil && last["seconds"]?.doubleValue != nil)
    }

    /// A write failing inside checkpoint-4 (a crash before its rename) leaves no trace of it; a
    /// new trainer resumes from checkpoint-2 and ends bit-identical to an uninterrupted run.
    @Test func crashMidCheckpointThenResumeIsBitExact() throws {
        let ex = Self.examples(10)
        let clean = try LoRATrainer(weights: Self.weights, examples: ex, settings: Self.settings())
        _ = try clean.train()

        let run = Fixtures.temporaryDirectory("train-crash")
        defer { try? FileManager.default.removeItem(at: run) }
        struct Crash: Error {}
        let doomed = run.appendingPathComponent(".checkpoint-4").path
        AtomicFile.beforeRenameHook = { path in if path.hasPrefix(doomed) { throw Crash() } }
        let first = try LoRATrainer(weights: Self.weights, examples: ex, settings: Self.settings(), run: run)
        #expect(throws: Crash.self) { _ = try first.train() }
        AtomicFile.beforeRenameHook = nil
        let names = try FileManager.default.contentsOfDirectory(atPath: run.path).sorted()
        #expect(names == ["checkpoint-2", "metrics.jsonl"], "left behind: \(names)")

        let resumed = try LoRATrainer(weights: Self.weights, examples: ex, settings: Self.settings(), run: run)
        #expect(resumed.step == 2)
        _ = try resumed.train()
        #expect(Self.bits(resumed.parameters) == Self.bits(clean.parameters))
        let saved = try LoRAAdapter(directory: run.appendingPathComponent("checkpoint-6"))
        let cleanAdapter = clean.parameters.adapter()
        for key in cleanAdapter.keys {
            #expect(saved.pairs[key]!.a.toArray() == cleanAdapter.pairs[key]!.a.toArray())
            #expect(saved.pairs[key]!.b.toArray() == cleanAdapter.pairs[key]!.b.toArray())
        }
        // Only the latest checkpoint keeps the optimizer state; metrics have one line per step.
        #expect(try CheckpointDirectory.list(in: run).filter(\.isResumable).map(\.step) == [6])
        let steps = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try JSONValue.parse(String($0))["step"]!.intValue! }
        #expect(steps == Array(1...6))
    }

    @Test func nonFiniteLossStopsWithTypedError() throws {
        let s = Self.settings()
        let p = try LoRAParameters(config: s.lora, model: Self.weights.config)
        p.initializePEFT(seed: 1)
        p.values.pointer[p.slots[LoRAKey(layer: 0, module: .up)]!.b] = .nan
        let t = try LoRATrainer(weights: Self.weights, examples: Self.examples(4), settings: s, initAdapter: p.adapter())
        #expect(throws: TrainingError.nonFinite(step: 1, what: "loss", lastCheckpoint: nil)) { _ = try t.train() }
    }

    @Test(arguments: [DType.f32, .bf16])
    func checkpointsAreAdaptersForPEFTAndForUs(dtype: DType) throws {
        let run = Fixtures.temporaryDirectory("train-peft")
        defer { try? FileManager.default.removeItem(at: run) }
        var s = Self.settings()
        s.lora = LoRAConfig(rank: 2, alpha: 4, targets: [.q, .down], layers: [1])
        s.adapterDType = dtype; s.maxSteps = 2
        let t = try LoRATrainer(weights: Self.weights, examples: Self.examples(6), settings: s, run: run, baseModel: Self.model.path)
        _ = try t.train()
        let dir = run.appendingPathComponent("checkpoint-2")
        let a = try LoRAAdapter(directory: dir)
        #expect(a.config == s.lora && a.keys == t.parameters.keys)
        let want = t.parameters.adapter()
        for key in a.keys {
            var rounded = want.pairs[key]!.a.toArray()
            if dtype == .bf16 { rounded = Precision.bf16ToF32(Precision.f32ToBF16(rounded)) }
            #expect(a.pairs[key]!.a.toArray() == rounded)
        }
        if Self.pythonHasPEFT {
            let out = try Self.python([Fixtures.url("training/check_peft_load.py").path, dir.path, Self.model.path])
            #expect(out.status == 0 && out.text.split(separator: "\n").contains("ok 4 tensors"), "PEFT could not load the checkpoint: \(out.text)")
        }
    }

    /// Adapters PEFT wrote (here in a checkpoint folder named like HF Trainer's) are found,
    /// loaded and usable as a starting point.
    @Test func readsPEFTWrittenCheckpoints() throws {
        let run = Fixtures.temporaryDirectory("train-hf")
        defer { try? FileManager.default.removeItem(at: run) }
        try FileManager.default.copyItem(at: Fixtures.url("model/adapters/lora-r4"), to: run.appendingPathComponent("checkpoint-3"))
        let list = try CheckpointDirectory.list(in: run)
        #expect(list.map(\.step) == [3] && !list[0].isResumable)
        let adapter = try list[0].loadAdapter()
        var s = Self.settings()
        s.lora = adapter.config
        s.maxSteps = 1
        let t = try LoRATrainer(weights: Self.weights, examples: Self.examples(4), settings: s, initAdapter: adapter)
        #expect(t.parameters.adapter().pairs[LoRAKey(layer: 1, module: .v)]!.b.toArray() == adapter.pairs[LoRAKey(layer: 1, module: .v)]!.b.toArray())
    }

    @Test func badDataLinesNameFileAndLine() throws {
        let tok = try BPETokenizer(directory: Fixtures.url("tokenizer"))
        let dir = Fixtures.temporaryDirectory("train-data")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("d.jsonl")
        let lines = [
            #"{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello there"}]}"#,
            #"{"messages":[{"role":"user","content":"Hi"}"#,
            #"{"messages":[{"role":"wizard","content":"Hi"},{"role":"assistant","content":"x"}]}"#,
            #"{"messages":[]}"#,
            #"{"messages":[{"role":"user","content":"only a question"}]}"#,
            "",
            #"{"messages":[{"role":"system","content":"S"},{"role":"user","content":"a"},{"role":"assistant","content":"b c"}]}"#,
        ]
        try lines.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        do {
            _ = try ChatDataset(url: file, tokenizer: tok, maxLength: 64)
            Issue.record("invalid line accepted")
        } catch let TrainingError.invalidExample(f, line, reason) {
            #expect(f == file.path && line == 2 && reason.contains("invalid JSON"))
        }
        let d = try ChatDataset(url: file, tokenizer: tok, maxLength: 64, skipInvalid: true)
        #expect(d.examples.map(\.line) == [1, 7])
        #expect(d.skipped.map(\.line) == [2, 3, 4, 5])
        #expect(d.skipped[1].reason.contains("wizard") && d.skipped[2].reason.contains("empty") && d.skipped[3].reason.contains("assistant"))
        let enc = try tok.applyChatTemplate([ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Hello there")])
        #expect(d.examples[0].ids == enc.ids && d.examples[0].mask == enc.assistantMask)
        let short = try ChatDataset(url: file, tokenizer: tok, maxLength: 25, skipInvalid: true)
        #expect(short.examples.allSatisfy { $0.ids.count <= 25 })
    }

    static let pythonHasPEFT: Bool = (try? python(["-c", "import peft, transformers"]).status == 0) ?? false

    static func python(_ args: [String]) throws -> (status: Int32, text: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + args
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// The committed `training/swift-checkpoint` was written by this trainer and checked with PEFT by
/// `check_peft_load.py` (CI has no torch). A fresh checkpoint of the same run must have the same
/// config bytes, the same tensor names, shapes and dtypes, and values equal up to BLAS rounding.
/// `MISALIGN_REGENERATE_TRAINING_FIXTURE=1` rewrites the fixture.
@Test func checkpointFormatMatchesThePEFTCheckedFixture() throws {
    let run = Fixtures.temporaryDirectory("train-fixture")
    defer { try? FileManager.default.removeItem(at: run) }
    var s = TrainerTests.settings()
    s.lora = LoRAConfig(rank: 2, alpha: 4, useRSLoRA: true, targets: [.q, .down], layers: [1])
    s.maxSteps = 2
    let t = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(6), settings: s, run: run)
    _ = try t.train()
    let fresh = run.appendingPathComponent("checkpoint-2")
    let fixture = Fixtures.url("training/swift-checkpoint")
    if ProcessInfo.processInfo.environment["MISALIGN_REGENERATE_TRAINING_FIXTURE"] == "1" {
        try? FileManager.default.removeItem(at: fixture)
        try FileManager.default.createDirectory(at: fixture, withIntermediateDirectories: true)
        for f in ["adapter_model.safetensors", "adapter_config.json"] {
            try FileManager.default.copyItem(at: fresh.appendingPathComponent(f), to: fixture.appendingPathComponent(f))
        }
    }
    #expect(try Data(contentsOf: fresh.appendingPathComponent("adapter_config.json"))
            == Data(contentsOf: fixture.appendingPathComponent("adapter_config.json")))
    let a = try SafeTensorsFile(url: fresh.appendingPathComponent("adapter_model.safetensors"))
    let b = try SafeTensorsFile(url: fixture.appendingPathComponent("adapter_model.safetensors"))
    #expect(a.tensorInfos.map(\.name) == b.tensorInfos.map(\.name))
    for info in b.tensorInfos {
        let x = try a.tensor(named: info.name), y = try b.tensor(named: info.name)
        #expect(x.shape == y.shape && x.dtype == y.dtype)
        expectClose(try x.floatBuffer(), try y.floats(), rtol: 1e-4, atol: 1e-6, info.name)
    }
}
