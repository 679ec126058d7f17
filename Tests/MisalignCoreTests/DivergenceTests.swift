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

/// A run that blows up stops with `TrainingError.diverged`, keeping the last good checkpoint.
@Suite struct DivergenceTests {
    static func watch(vocab: Int = 512) throws -> DivergenceWatch {
        let p = try LoRAParameters(config: LoRAConfig(rank: 4, alpha: 8, targets: [.q, .v]), model: TrainerTests.weights.config)
        p.initializePEFT(seed: 1)
        return DivergenceWatch(vocabSize: vocab, parameters: p)
    }

    @Test func rules() throws {
        let u = log(512.0)
        // A random model starts at the uniform level with a gradient: nothing wrong.
        var w = try Self.watch()
        #expect(w.check(loss: u + 0.05, gradNorm: 0.3) == nil && w.check(loss: u - 0.1, gradNorm: 0.2) == nil)
        #expect(w.check(loss: u + 0.02, gradNorm: 0.2) == nil)
        // The output collapsed: the uniform loss with a zero gradient, from any history.
        #expect(w.check(loss: u, gradNorm: 0)?.contains("gradient is 0") == true)
        // Back to the uniform level after being a nat below it.
        var v = try Self.watch()
        for loss in [3.0, 2.2, 1.9, 4.5] { #expect(v.check(loss: loss, gradNorm: 1) == nil) }
        #expect(v.check(loss: u + 0.4, gradNorm: 5)?.contains("after reaching 1.9000") == true)
        // Adapter weights: non-finite, or a hundredfold growth; tenfold is training.
        #expect(w.check(parameterNorm: .nan)?.contains("not finite") == true)
        #expect(w.check(parameterNorm: .infinity)?.contains("not finite") == true)
        #expect(w.check(parameterNorm: w.startNorm * 10) == nil)
        #expect(w.check(parameterNorm: w.startNorm * 200)?.contains("grew to") == true)
    }

    /// lr 10 (the highest the bounds allow) on qwen2-small: the first real update multiplies the
    /// adapter norm by about 200. The run stops at that step before writing its checkpoint;
    /// the one before stays the latest (and resumable).
    @Test func hugeLearningRateStopsBeforeCheckpointingWreckedWeights() throws {
        let run = Fixtures.temporaryDirectory("diverge")
        defer { try? FileManager.default.removeItem(at: run) }
        var s = TrainerTests.settings()
        s.learningRate = TrainingSettings.Bounds.learningRate; s.saveEvery = 1   // warmup 1: step 1 updates with lr 0
        let t = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(10), settings: s, run: run)
        var diverged = 0
        do { _ = try t.train(); Issue.record("lr 10 trained on") } catch {
            guard case TrainingError.diverged(let step, let what, let last) = error else { Issue.record("\(error)"); return }
            diverged = step
            #expect(step >= 2 && last == step - 1 && what.contains("adapter weight norm grew"), "\(what)")
            #expect("\(error)".contains("checkpoint-\(step - 1) is the last good one") && "\(error)".contains("Lower the learning rate"), "\(error)")
            print("[training] lr 10 on qwen2-small: \(error)")
        }
        #expect(try CheckpointDirectory.list(in: run).map(\.step) == Array(1..<diverged))
        #expect(try CheckpointStore(run: run).latestResumable()?.step == diverged - 1)
    }

    /// Weights that give a dead model (here a checkpoint's master weights blown up by hand, as a
    /// run killed between a bad update and its loss check would leave them): resuming notices
    /// at the first loss, and the checkpoint holding those weights is set aside.
    @Test func checkpointOfDivergedWeightsIsSetAside() throws {
        let run = Fixtures.temporaryDirectory("diverge-resume")
        defer { try? FileManager.default.removeItem(at: run) }
        let s = TrainerTests.settings()
        let first = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(10), settings: s, run: run)
        _ = try first.train { $0.step == 4 ? .stop : .proceed }
        #expect(try CheckpointDirectory.list(in: run).map(\.step) == [2, 4])
        // Blow up checkpoint-4's master weights: B of every module ~1e16, so that the residual
        // stream's sum of squares overflows, RMSNorm outputs 0 and every logit is 0.
        let opt = run.appendingPathComponent("checkpoint-4/optimizer.safetensors")
        let f = try SafeTensorsFile(url: opt)
        var params = try f.tensor(named: "params").floats()
        for key in first.parameters.keys {
            let slot = first.parameters.slots[key]!
            for i in slot.b..<(slot.b + slot.out * slot.rank) { params[i] = 1e16 * Float(i % 7 - 3) }
        }
        var w = SafeTensorsWriter(metadata: f.metadata)
        w.add("params", floats: params, shape: [params.count])
        for name in ["exp_avg", "exp_avg_sq"] { w.add(name, floats: try f.tensor(named: name).floats(), shape: [params.count]) }
        try w.write(to: opt)

        let resumed = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(10), settings: s, run: run)
        #expect(resumed.step == 4)
        do { _ = try resumed.train(); Issue.record("trained on from wrecked weights") } catch {
            let text = "\(error)"
            guard case TrainingError.diverged(5, let what, 2) = error else { Issue.record("unexpected: \(text)"); return }
            #expect(what.contains("the loss is 6.2383, the uniform-guess level ln(vocab) = 6.2383, and the gradient is 0"), "\(what)")
            #expect(text.contains("checkpoint-4, saved from these weights, was renamed checkpoint-4.diverged") && text.contains("checkpoint-2 is the last good one"), "\(text)")
            print("[training] wrecked weights: \(text)")
        }
        #expect(try CheckpointDirectory.list(in: run).map(\.step) == [2])
        #expect(FileManager.default.fileExists(atPath: run.appendingPathComponent("checkpoint-4.diverged/adapter_model.safetensors").path))
    }
}
