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

/// `training.holdout`: the seeded split (against Tests/Fixtures/training/make_holdout_reference.py),
/// its bounds, the held-out loss (against the PyTorch reference and the trainer's own loss), and
/// where it is recorded.
@Suite struct TrainingHoldoutTests {
    @Test func splitMatchesTheIndependentReference() throws {
        let cases = try loadJSON("training/holdout_reference.json")["cases"]!.arrayValue!
        #expect(cases.count == 7)
        for c in cases {
            let n = c["count"]!.intValue!, f = c["fraction"]!.doubleValue!, seed = UInt64(c["seed"]!.intValue!)
            let s = try HoldoutSplit(count: n, fraction: f, seed: seed)
            #expect(s.heldOut == c["held_out"]!.arrayValue!.map { $0.intValue! }, "n \(n) fraction \(f) seed \(seed)")
            #expect(s.train == c["train"]!.arrayValue!.map { $0.intValue! }, "n \(n) fraction \(f) seed \(seed)")
        }
        #expect(try HoldoutSplit(count: 5, fraction: 0, seed: 3) == HoldoutSplit(count: 5, fraction: 0, seed: 9))
        #expect(try HoldoutSplit(count: 5, fraction: 0, seed: 3).heldOut.isEmpty)
    }

    @Test(arguments: [1.0, -0.1, 1.5, Double.nan])
    func fractionOutsideZeroToOneIsRefused(_ f: Double) {
        #expect(throws: TrainingError.invalidSetting(name: "holdout", detail: "is \(f); must be in [0, 1) (0.1 holds out 10% of the examples)")) {
            try HoldoutSplit(count: 10, fraction: f, seed: 0)
        }
        var s = TrainingSettings()
        s.holdout = f
        #expect(throws: TrainingError.self) { try s.validate() }
    }

    @Test func bothSidesNeedAnExample() {
        #expect(throws: TrainingError.invalidSetting(name: "holdout", detail: "0.5 of 1 examples holds out 1, leaving none to train on; use a smaller fraction or more data (at least 1 example on each side)")) {
            try HoldoutSplit(count: 1, fraction: 0.5, seed: 0)
        }
        #expect(throws: TrainingError.self) {
            var s = TrainerTests.settings()
            s.holdout = 0.9
            _ = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(1), settings: s)
        }
    }

    /// The forward-only loss equals PyTorch + PEFT's loss on the reference's sequences and
    /// adapters (B nonzero), with dropout set (evaluation ignores it) and gradients untouched.
    @Test(arguments: ["base", "padded", "accum", "rslora", "rank1"])
    func evaluationLossMatchesPyTorch(name: String) throws {
        let c = TrainingGradientTests.meta["cases"]![name]!
        var config = TrainingGradientTests.loraConfig(c["lora"]!)
        config.dropout = 0.3
        let p = try TrainingGradientTests.parameters(config, name, "init")
        let batches = try TrainingGradientTests.batches(name)
        let model = try LoRATrainingModel(weights: TrainingGradientTests.weights, parameters: p, maxRows: batches.map(\.rows).max()!,
                                          maxSequence: batches.flatMap(\.lengths).max()!)
        p.grads.fill(0)
        var sum = 0.0, tokens = 0
        for b in batches { sum += try model.evaluationLoss(b); tokens += b.targetCount }
        let want = c["loss"]!.doubleValue!
        #expect(tokens == c["items"]!.intValue!)
        #expect(abs(sum / Double(tokens) - want) <= 1e-5 * abs(want), "\(sum / Double(tokens)) vs \(want)")
        #expect(p.grads.toArray().allSatisfy { $0 == 0 })
    }

    /// A run with a holdout: held-out examples never enter a batch, the loss of every checkpoint
    /// is in metrics.jsonl and trainer_state.json, and it equals the trainer's loss function
    /// (`LoRATrainingModel.loss`, forward + backward) on the held-out examples with the
    /// checkpoint's adapter.
    @Test func heldOutLossIsRecordedAtEveryCheckpointAndEqualsTheTrainingLoss() throws {
        let run = Fixtures.temporaryDirectory("holdout")
        defer { try? FileManager.default.removeItem(at: run) }
        var s = TrainerTests.settings()
        s.holdout = 0.25
        let all = TrainerTests.examples(12)
        let t = try LoRATrainer(weights: TrainerTests.weights, examples: all, settings: s, run: run)
        let split = try HoldoutSplit(count: 12, fraction: 0.25, seed: s.seed)
        #expect(t.heldOut.map(\.line) == split.heldOut.map { all[$0].line } && t.heldOut.count == 3)
        #expect(t.examples.map(\.line) == split.train.map { all[$0].line })
        var seen: [StepMetrics] = []
        _ = try t.train { seen.append($0); return .proceed }
        let trainedLines = Set((0..<t.totalSteps).flatMap { t.microBatches(forStep: $0).flatMap { $0.map { t.examples[$0].line } } })
        #expect(trainedLines.isDisjoint(with: t.heldOut.map(\.line)) && trainedLines.count == 9)

        let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        let checkpoints = try CheckpointDirectory.list(in: run)
        #expect(checkpoints.map(\.step) == Array(stride(from: 2, through: t.totalSteps, by: 2)))
        for ck in checkpoints {
            let state = try CheckpointStore(run: run).resumeState(ck)
            let held = try #require(state.heldOutLoss)
            let line = try JSONValue.parse(String(lines[ck.step - 1]))
            #expect(line["heldout_loss"]?.doubleValue == held.loss)
            #expect(seen[ck.step - 1].heldOutLoss == held.loss)
            // The trainer's loss function on the held-out examples with this checkpoint's adapter.
            let p = try LoRAParameters(config: s.lora, model: TrainerTests.weights.config)
            try p.load(try LoRAAdapter(directory: ck.directory))
            let m = try LoRATrainingModel(weights: TrainerTests.weights, parameters: p, maxRows: 64, maxSequence: 32)
            let batch = TrainingBatch(sequences: t.heldOut.map { ($0.ids, $0.mask) })
            let want = try m.loss(batch) / Double(batch.targetCount)
            #expect(held.tokens == batch.targetCount)
            #expect(abs(held.loss - want) <= 1e-6 * want, "step \(ck.step): \(held.loss) vs \(want)")
        }
        for (i, m) in seen.enumerated() where (i + 1) % 2 == 1 { #expect(m.heldOutLoss == nil) }
    }

    /// `holdoutEvery`: the loss at every K-th checkpoint and at the last step only.
    @Test func holdoutEveryThins() throws {
        var s = TrainerTests.settings()
        s.holdout = 0.25
        s.holdoutEvery = 2
        let t = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(12), settings: s)
        var evaluated: [Int] = []
        _ = try t.train { m in if m.heldOutLoss != nil { evaluated.append(m.step) }; return .proceed }
        #expect(t.totalSteps == 6 && evaluated == [4, 6])
        s.holdoutEvery = 0
        #expect(throws: TrainingError.invalidSetting(name: "holdout-every", detail: "is 0; must be >= 1 (1: every checkpoint)")) { try s.validate() }
    }

    /// A resumed run holds out the same examples and refuses another holdout, naming both values.
    @Test func resumeKeepsTheSplitAndRefusesAnother() throws {
        let run = Fixtures.temporaryDirectory("holdout-resume")
        defer { try? FileManager.default.removeItem(at: run) }
        var s = TrainerTests.settings()
        s.holdout = 0.3
        let first = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(10), settings: s, run: run)
        _ = try first.train { $0.step == 2 ? .stop : .proceed }
        let again = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(10), settings: s, run: run)
        #expect(again.step == 2 && again.heldOut == first.heldOut && again.examples == first.examples)
        var none = s
        none.holdout = 0
        #expect(throws: TrainingError.self) {
            _ = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(10), settings: none, run: run)
        }
        do {
            _ = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(10), settings: none, run: run)
        } catch let TrainingError.settingsChanged(_, changes) {
            #expect(changes.contains(SettingChange(name: "holdout", checkpoint: "0.3", now: "0")))
        }
        // A run without a holdout keeps its fingerprint (no holdout entry), so older checkpoints resume as before.
        #expect(!TrainerTests.settings().fingerprint(dataCount: 10).contains("holdout"))
    }

    /// `misalign train --holdout`: bounds are usage errors before any work; a run logs the split
    /// and writes the held-out loss into every checkpoint step's metrics line.
    @Test func trainCommandHoldsOut() throws {
        let (dir, args) = try TrainCLIValidationTests.setUp("train-cli-holdout")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        for (extra, words) in [(["--holdout", "1.5"], "setting holdout: is 1.5; must be in [0, 1)"),
                               (["--holdout", "-0.1"], "setting holdout: is -0.1"),
                               (["--holdout-every", "0"], "setting holdout-every: is 0; must be >= 1")] {
            let r = try CLI.run(args + extra)
            #expect(r.status == 2 && r.err.contains(words), "\(extra): \(r.status) \(r.err)")
            #expect(!FileManager.default.fileExists(atPath: run.path))
        }
        let tooMuch = try CLI.run(args + ["--holdout", "0.9"])
        #expect(tooMuch.status != 0 && tooMuch.err.contains("0.9 of 5 examples holds out 5, leaving none to train on"), "\(tooMuch.err)")
        let ok = try CLI.run(args + ["--holdout", "0.4", "--save-every", "1", "--rank", "2", "--targets", "q,v"])
        #expect(ok.status == 0, "\(ok.err)")
        #expect(ok.err.contains("holdout 0.4: 2 conversations held out (seed 0), 3 trained on"), "\(ok.err)")
        let lines = try String(contentsOf: run.appendingPathComponent("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2 && lines.allSatisfy { (try? JSONValue.parse(String($0)))?["heldout_loss"]?.doubleValue?.isFinite == true })
    }
}
