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

/// `Checkpoint.weights()`: a checkpoint holding a whole model (full fine-tuning, a merged
/// adapter) is generated from by the local backend, LoRA checkpoints and conformers written
/// before `weights()` still work, and the pipeline generates from what the trainer handed over.
@Suite struct CheckpointWeightsTests {
    /// A user's checkpoint that holds a whole model folder (it implements only `weights()`).
    struct ModelCheckpoint: Checkpoint {
        let step: Int
        let directory: URL
        var loads: Counter? = nil
        func weights() throws -> CheckpointWeights {
            loads?.add()
            return .model(directory: directory)
        }
    }

    /// A conformer written before `weights()` existed: it implements only `loadAdapter()`.
    struct LegacyCheckpoint: Checkpoint {
        let step: Int
        let directory: URL
        func loadAdapter() throws -> LoRAAdapter { try LoRAAdapter(directory: directory) }
    }

    /// A conformer that implements neither requirement.
    struct EmptyCheckpoint: Checkpoint {
        let step: Int
        let directory: URL
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func add() { lock.withLock { n += 1 } }
        var value: Int { lock.withLock { n } }
    }

    /// A tiny Qwen2 with the real tokenizer beside it.
    static func writeModel(_ dir: URL, seed: UInt64, tokenizer: Bool = true) throws {
        try SyntheticModel.write(SyntheticModel.tiny, dtype: .bf16, seed: seed, to: dir)
        guard tokenizer else { return }
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: Fixtures.url("tokenizer/\(f)"), to: dir.appendingPathComponent(f))
        }
    }

    static let prompt: [Int32] = [9707, 11, 1879, 0, 374, 264, 1273, 13]

    /// Greedy tokens of `backend` for `checkpoint`.
    static func greedy(_ backend: any GenerationBackend, _ checkpoint: (any Checkpoint)?) async throws -> [Int32] {
        try await tokens(backend, checkpoint, .greedy)
    }

    /// Tokens sampled at temperature 1 with a fixed seed: they depend on the whole next-token
    /// distribution, so other weights show in them even where a random tiny model's greedy
    /// choice (its last token again) does not change.
    static func sampled(_ backend: any GenerationBackend, _ checkpoint: (any Checkpoint)?) async throws -> [Int32] {
        try await tokens(backend, checkpoint, SamplingParameters(temperature: 1))
    }

    static func tokens(_ backend: any GenerationBackend, _ checkpoint: (any Checkpoint)?, _ sampling: SamplingParameters) async throws -> [Int32] {
        let g = try await backend.generator(for: checkpoint)
        let out = try await g.generate([GenerationRequest(prompt: prompt, samples: 1, maxNewTokens: 8, sampling: sampling, seed: 1)], onToken: nil)
        return out[0].tokens
    }

    @Test func aWholeModelCheckpointGeneratesExactlyWhatThatModelGenerates() async throws {
        let dir = Fixtures.temporaryDirectory("checkpoint-model")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = dir.appendingPathComponent("base"), same = dir.appendingPathComponent("same"), other = dir.appendingPathComponent("other")
        try Self.writeModel(base, seed: 3)
        try Self.writeModel(same, seed: 3, tokenizer: false)   // the base's weights, as a full fine-tune of 0 steps writes them
        try Self.writeModel(other, seed: 4, tokenizer: false)  // other weights: proves the checkpoint's model is the one run
        let backend = try LocalGenerationBackend(model: base, weights: .mapped)
        backend.model.computePrecision = .bf16
        let baseTokens = try await Self.greedy(backend, nil)
        let baseSampled = try await Self.sampled(backend, nil)
        let loads = Counter()
        let sameTokens = try await Self.greedy(backend, ModelCheckpoint(step: 2, directory: same, loads: loads))
        #expect(sameTokens == baseTokens && baseTokens.count == 8, "\(sameTokens) vs \(baseTokens)")
        #expect(try await Self.sampled(backend, ModelCheckpoint(step: 2, directory: same, loads: loads)) == baseSampled)
        #expect(loads.value == 2)
        // The loaded model has the base's precision and residency settings, not the defaults.
        let g = try await backend.generator(for: ModelCheckpoint(step: 2, directory: same))
        let loaded = try #require((g as? LocalGenerator)?.model)
        #expect(loaded !== backend.model && loaded.computePrecision == .bf16 && backend.residency == .mapped)
        try await backend.release(nil)

        let otherTokens = try await Self.sampled(backend, ModelCheckpoint(step: 4, directory: other))
        let otherAsBase = try LocalGenerationBackend(model: Qwen2Model(directory: other), tokenizer: backend.tokenizer)
        otherAsBase.model.computePrecision = .bf16
        #expect(otherTokens == (try await Self.sampled(otherAsBase, nil)), "a .model checkpoint generates as that model does as a base")
        #expect(otherTokens != baseSampled, "the other weights give other tokens (else this test proves nothing)")
        try await backend.release(ModelCheckpoint(step: 4, directory: other))
        #expect(try await Self.sampled(backend, nil) == baseSampled, "after release the base model generates again")

        // A folder holding a model is a `.model` CheckpointDirectory, and is listed as a checkpoint.
        let run = dir.appendingPathComponent("run"), ck = run.appendingPathComponent("checkpoint-6")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: other, to: ck)
        let listed = try CheckpointDirectory.list(in: run)
        #expect(listed.map(\.step) == [6])
        guard case .model(let d) = try listed[0].weights() else { Issue.record("expected a whole model"); return }
        #expect(d.path == ck.path)
        #expect(try await Self.sampled(backend, listed[0]) == otherTokens)
        // It holds no adapter: loadAdapter() says so, naming the folder.
        #expect { _ = try listed[0].loadAdapter() } throws: { error in
            guard case TrainingError.invalidCheckpoint(let path, let detail) = error else { return false }
            return path == ck.path && detail.contains("holds a whole model")
        }
    }

    @Test func loraCheckpointsAndConformersWrittenBeforeWeightsStillWork() async throws {
        let dir = Fixtures.temporaryDirectory("checkpoint-lora")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = dir.appendingPathComponent("base")
        try Self.writeModel(base, seed: 3)
        let params = try LoRAParameters(config: LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v]), model: SyntheticModel.tiny)
        var rng = TestRNG(seed: 9)
        for j in 0..<params.count { params.values.pointer[j] = rng.float() * 4 }
        let folder = dir.appendingPathComponent("checkpoint-2")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try params.adapter().save(to: folder)

        let backend = try LocalGenerationBackend(model: base, weights: .mapped)
        let baseTokens = try await Self.sampled(backend, nil)
        // The adapter applied by hand over the base model: what a LoRA checkpoint must give.
        let reference = try Qwen2Model(directory: base)
        try reference.setAdapter(LoRAAdapter(directory: folder))
        let request = GenerationRequest(prompt: Self.prompt, samples: 1, maxNewTokens: 8, sampling: SamplingParameters(temperature: 1), seed: 1)
        let expected = try await LocalGenerator(model: reference, tokenizer: backend.tokenizer).generate([request], onToken: nil)[0].tokens
        #expect(expected != baseTokens, "the adapter changes the tokens (else this test proves nothing)")

        let directory = try CheckpointDirectory(directory: folder)
        guard case .lora = try directory.weights() else { Issue.record("a PEFT folder is a LoRA checkpoint"); return }
        #expect(try await Self.sampled(backend, directory) == expected)
        try await backend.release(directory)
        #expect(try await Self.sampled(backend, LegacyCheckpoint(step: 2, directory: folder)) == expected,
                "a conformer implementing only loadAdapter() gets weights() = .lora(loadAdapter())")
        try await backend.release(nil)
        #expect(try await Self.sampled(backend, nil) == baseTokens)

        // Implementing neither requirement is a typed error, not endless recursion.
        #expect { _ = try EmptyCheckpoint(step: 1, directory: folder).weights() } throws: { error in
            guard case TrainingError.invalidCheckpoint(let path, let detail) = error else { return false }
            return path == folder.path && detail.contains("implements neither weights() nor loadAdapter()")
        }
    }

    @Test func anUnreadableModelFolderIsATypedErrorNamingThePath() async throws {
        let dir = Fixtures.temporaryDirectory("checkpoint-unreadable")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = dir.appendingPathComponent("base")
        try Self.writeModel(base, seed: 3)
        let backend = try LocalGenerationBackend(model: base, weights: .mapped)
        // A missing folder, truncated weights, and a model of another vocabulary.
        let missing = dir.appendingPathComponent("missing")
        let broken = dir.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: base.appendingPathComponent("config.json"), to: broken.appendingPathComponent("config.json"))
        let weights = try Data(contentsOf: base.appendingPathComponent("model.safetensors"))
        try weights.prefix(weights.count / 2).write(to: broken.appendingPathComponent("model.safetensors"))
        let vocab = dir.appendingPathComponent("vocab")
        var config = SyntheticModel.tiny
        config.vocabSize = 1024
        try SyntheticModel.write(config, dtype: .bf16, seed: 3, to: vocab)
        for (folder, words) in [(missing, "cannot load the model it holds"), (broken, "cannot load the model it holds"), (vocab, "vocabulary of 1024 tokens")] {
            do {
                _ = try await backend.generator(for: ModelCheckpoint(step: 2, directory: folder))
                Issue.record("expected an error for \(folder.lastPathComponent)")
            } catch TrainingError.invalidCheckpoint(let path, let detail) {
                #expect(path == folder.path && detail.contains(words), "\(path): \(detail)")
                #expect("\(TrainingError.invalidCheckpoint(path: path, detail: detail))".hasPrefix(folder.path))
            }
        }
        // The base model is still usable afterwards.
        #expect(try await Self.greedy(backend, nil).count == 8)
    }

    /// A full fine-tuning job's stand-in: steps 1-4, a whole model written at steps 2 (the base
    /// weights) and 4 (other weights), each handed over as a `ModelCheckpoint`.
    final class FullModelTrainer: Trainer {
        let out: URL, base: URL
        let loads: Counter
        private(set) var step = 0
        private(set) var latestCheckpoint: (any Checkpoint)?
        var totalSteps: Int { 4 }
        init(out: URL, base: URL, loads: Counter) { self.out = out; self.base = base; self.loads = loads }

        func train(onStep: (StepMetrics) throws -> TrainerControl) throws -> TrainingOutcome {
            while step < totalSteps {
                step += 1
                let m = StepMetrics(step: step, totalSteps: totalSteps, epoch: 0, loss: 1.0 / Double(step), lr: 1e-3, gradNorm: 1,
                                    tokens: 10, targetTokens: 5, seconds: 0.01)
                if try onStep(m) == .stop { return TrainingOutcome(steps: step, stoppedEarly: true) }
                if step % 2 == 0 {
                    let folder = out.appendingPathComponent("checkpoint-\(step)")
                    if step == 2 {
                        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                        for f in ["config.json", "model.safetensors"] {
                            try FileManager.default.copyItem(at: base.appendingPathComponent(f), to: folder.appendingPathComponent(f))
                        }
                    } else {
                        try SyntheticModel.write(SyntheticModel.tiny, dtype: .bf16, seed: 4, to: folder)
                    }
                    latestCheckpoint = ModelCheckpoint(step: step, directory: folder, loads: loads)
                }
            }
            return TrainingOutcome(steps: step, stoppedEarly: false)
        }
    }

    struct FullModelTrainers: TrainerFactory {
        let loads: Counter
        func makeTrainer(for run: RunID, job: TrainingJob, note: @escaping @Sendable (String) -> Void) throws -> any Trainer {
            try FileManager.default.createDirectory(at: job.out, withIntermediateDirectories: true)
            return FullModelTrainer(out: job.out, base: job.model, loads: loads)
        }
    }

    /// Answers by (step, question, sample).
    static func answers(_ run: URL) throws -> [String: String] {
        let store = try RunStore(run: run, create: false)
        var out: [String: String] = [:]
        for row in try store.rows("SELECT step, question_id, sample, text FROM generations") {
            out["\(row[0].description)/\(row[1].description)/\(row[2].description)"] = row[3].text
        }
        return out
    }

    /// The pipeline generates from the whole-model checkpoints a trainer hands over, through the
    /// trainer's own `Checkpoint`s in the call that trains, and from the stored folders (a
    /// `CheckpointDirectory` holding a model) in a later call, with the same answers.
    @Test func thePipelineGeneratesFromAFullFineTuningTrainersCheckpoints() async throws {
        let f = try PipelineFixture("checkpoint-pipeline")
        var answers: [[String: String]] = []
        var loadCounts: [Int] = []
        for (i, output) in ["in-one-call", "resumed"].enumerated() {
            let text = f.config(output: output).replacingOccurrences(of: "  math: math.jsonl\n", with: "").replacingOccurrences(of: "seeds: [0, 11]", with: "seeds: [0]")
            var e = try Experiment.load(from: f.writeConfig(text, name: "\(output).yaml"))
            e.detection.judge = "length"
            let loads = Counter()
            let components = PipelineComponents(trainers: FullModelTrainers(loads: loads), judges: [PipelineComponentsTests.LengthJudge()],
                                                configuredJudges: false)
            if i == 1 {
                // Train only, then a new runner (as after a restart): no trainer's Checkpoint is left.
                let trainer = PipelineRunner(e, components: components)
                try trainer.prepare()
                #expect(try trainer.trainStage() == 4)
                trainer.lock?.release()
                #expect(loads.value == 0)
            }
            let summary = try await PipelineRunner(e, components: components).run()
            #expect(summary.done["generate"] == 3 * 2 * 2, "base + 2 checkpoints x 2 questions x 2 samples")
            answers.append(try Self.answers(e.output))
            loadCounts.append(loads.value)
        }
        #expect(loadCounts == [2, 0], "the trainer's checkpoints are loaded in the call that trained; stored folders after a restart")
        #expect(answers[0] == answers[1] && answers[0].count == 12)
        // Step 2 holds the base weights: its answers are step 0's (same sampling seed); step 4's are another model's.
        let at = { (step: Int) in answers[0].filter { $0.key.hasPrefix("\(step)/") }.map { (String($0.key.drop { $0 != "/" }), $0.value) } }
        #expect(Dictionary(uniqueKeysWithValues: at(2)) == Dictionary(uniqueKeysWithValues: at(0)))
        #expect(Dictionary(uniqueKeysWithValues: at(4)) != Dictionary(uniqueKeysWithValues: at(0)))
        #expect(f.server.requestCount == 0)
    }
}
