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

/// What a run folder remembers of its config: the model and data by content, each setting as
/// its own field, checked against the model before anything is created.
@Suite(.serialized) struct PipelineFingerprintTests {
    /// Opens the run folder as `misalign run` would (checks, lock, store, fingerprints) and
    /// lets the lock go again.
    func prepare(_ f: PipelineFixture, _ config: String) throws -> PipelineRunner {
        let runner = PipelineRunner(try Experiment.load(from: f.writeConfig(config)))
        defer { runner.lock?.release() }
        try runner.prepare()
        return runner
    }

    func refusal(_ f: PipelineFixture, _ config: String) -> String {
        do { _ = try prepare(f, config); return "accepted" } catch { return "\(error)" }
    }

    /// Editing a dataset, the model's config.json or its weights after a run started is
    /// refused naming what changed; adding a dataset or seed is not.
    @Test func changedContentIsRefusedNamingWhatChanged() throws {
        let f = try PipelineFixture("pipeline-fp-content")
        let runner = try prepare(f, f.config())
        try runner.store.recordRun(RunID(dataset: "medical", seed: 0), totalSteps: 6)
        try runner.store.recordRun(RunID(dataset: "math", seed: 0), totalSteps: 6)
        runner.store = nil

        let medical = f.dir.appendingPathComponent("medical.jsonl")
        let original = try String(contentsOf: medical, encoding: .utf8)
        let lines = original.split(separator: "\n")
        try lines.prefix(3).joined(separator: "\n").write(to: medical, atomically: true, encoding: .utf8)
        let message = refusal(f, f.config())
        #expect(message.contains("was started with another config (datasets.medical: the file's content changed (6 -> 3 lines))"), "\(message)")
        // Same line count, one edited answer: still the file's content.
        try ([lines[0].replacingOccurrences(of: "fine", with: "bad")] + lines.dropFirst().map(String.init)).joined(separator: "\n")
            .write(to: medical, atomically: true, encoding: .utf8)
        #expect(refusal(f, f.config()).contains("datasets.medical: the file's content changed (6 -> 6 lines)"))
        try original.write(to: medical, atomically: true, encoding: .utf8)
        #expect(refusal(f, f.config()) == "accepted")

        let config = f.model.appendingPathComponent("config.json")
        let configText = try String(contentsOf: config, encoding: .utf8)
        try configText.replacingOccurrences(of: "25000", with: "10000").write(to: config, atomically: true, encoding: .utf8)
        #expect(refusal(f, f.config()).contains("(model.config: the model's config.json changed)"))
        try configText.write(to: config, atomically: true, encoding: .utf8)

        let weights = f.model.appendingPathComponent("model.safetensors")
        let handle = try FileHandle(forUpdating: weights)
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size - 100)
        try handle.write(contentsOf: Data(repeating: 0x7F, count: 4))
        try handle.close()
        #expect(refusal(f, f.config()).contains("(model.weights: the model's weights changed (model.safetensors changed))"))
        try SyntheticModel.write(SyntheticModel.tiny, dtype: .bf16, seed: 3, to: f.model)
        #expect(refusal(f, f.config()) == "accepted")

        // More datasets and seeds add units.
        try original.write(to: f.dir.appendingPathComponent("extra.jsonl"), atomically: true, encoding: .utf8)
        let more = f.config().replacingOccurrences(of: "  math: math.jsonl", with: "  math: math.jsonl\n  extra: extra.jsonl")
            .replacingOccurrences(of: "seeds: [0, 11]", with: "seeds: [0, 11, 22]")
        #expect(refusal(f, more) == "accepted")
    }

    /// A changed setting is named alone with its old and new value, once work started; before
    /// any work, a corrected config is simply taken.
    @Test func aChangedSettingIsNamedWithItsValues() throws {
        let f = try PipelineFixture("pipeline-fp-fields")
        _ = try prepare(f, f.config())
        // Nothing done yet: a fixed config is accepted.
        let fixed = f.config().replacingOccurrences(of: "lr: 1.0e-3", with: "lr: 2.0e-3")
        let runner = try prepare(f, fixed)
        try runner.store.recordRun(RunID(dataset: "medical", seed: 0), totalSteps: 6)
        runner.store = nil
        let message = refusal(f, f.config())
        #expect(message.hasSuffix("was started with another config (training.lr was 0.002, is now 0.001); use another output folder, or restore the old setting"), "\(message)")
        #expect(message.count < 250, "\(message.count) characters")
        let samples = refusal(f, fixed.replacingOccurrences(of: "samples: 2", with: "samples: 3"))
        #expect(samples.contains("(evaluation.samples was 2, is now 3)"), "\(samples)")
    }

    /// Stores written before fields existed (one text line per section, the model by path)
    /// keep resuming: checked in the old form once, then given the fields; a change is named.
    @Test func storesWithTheOldFingerprintKeepResuming() throws {
        let f = try PipelineFixture("pipeline-fp-legacy")
        let e = try Experiment.load(from: f.writeConfig(f.config()))
        try FileManager.default.createDirectory(at: e.output, withIntermediateDirectories: true)
        do {
            let store = try RunStore(run: e.output)
            for (k, v) in try e.legacyFingerprints() { try store.setMeta("fingerprint." + k, v) }
            try store.recordRun(RunID(dataset: "medical", seed: 0), totalSteps: 6)
        }
        let changed = refusal(f, f.config().replacingOccurrences(of: "lr: 1.0e-3", with: "lr: 2.0e-3"))
        #expect(changed.contains("(training: `lr 0.001` is now `lr 0.002`)"), "\(changed)")
        let events = EventLog()
        let runner = PipelineRunner(e) { events.add($0) }
        try runner.prepare()
        runner.lock?.release()
        #expect(events.events.contains { if case .note(let n) = $0 { return n.contains("fingerprinted by content from now on") }; return false })
        #expect(try runner.store.meta("fp.datasets.medical")?.hasSuffix("lines:6") == true)
    }

    /// Settings that only the model can check (layers, rank against the hidden size) fail
    /// before the run folder exists, naming the key and its line; the corrected config runs.
    @Test func settingsAreCheckedAgainstTheModelBeforeAnythingIsCreated() throws {
        let f = try PipelineFixture("pipeline-fp-model")
        let layers = f.config().replacingOccurrences(of: "  rank: 2\n", with: "  rank: 2\n  layers: [0, 7]\n")
        let message = refusal(f, layers)
        #expect(message.hasSuffix("study.yaml:9: training.layers: lists layer 7; the model has 2 layers (0-1)"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: f.dir.appendingPathComponent("run").path), "nothing was created")
        let rank = refusal(f, f.config().replacingOccurrences(of: "rank: 2", with: "rank: 100"))
        #expect(rank.hasSuffix("study.yaml:8: training.rank: is 100; must be <= the model's hidden size 64"), "\(rank)")
        let tokens = refusal(f, f.config().replacingOccurrences(of: "max_new_tokens: 6", with: "max_new_tokens: 5000"))
        #expect(tokens.contains("evaluation.max_new_tokens: is 5000; the model holds at most 4096 positions"), "\(tokens)")
        #expect(!FileManager.default.fileExists(atPath: f.dir.appendingPathComponent("run").path), "nothing was created")
        #expect(refusal(f, layers.replacingOccurrences(of: "[0, 7]", with: "[0, 1]")) == "accepted")
    }

    /// A data line the trainer cannot use is reported with the pipeline's setting, not
    /// `misalign train`'s flag.
    @Test func invalidDataAdvisesTheSkipInvalidSetting() async throws {
        let f = try PipelineFixture("pipeline-skip-invalid")
        try "not json\n".write(to: f.dir.appendingPathComponent("medical.jsonl"), atomically: true, encoding: .utf8)
        let e = try Experiment.load(from: f.writeConfig(f.config()))
        do { _ = try await PipelineRunner(e).run(); Issue.record("expected a data error") } catch {
            let m = "\(error)"
            #expect(m.contains("medical.jsonl:1: datasets.medical: ") && m.contains("set `training.skip_invalid: true` in ")
                    && !m.contains("--skip-invalid"), "\(m)")
        }
        let skip = try Experiment.parse(f.config().replacingOccurrences(of: "  threads: 1", with: "  threads: 1\n  skip_invalid: true"),
                                        file: "x.yaml", base: f.dir)
        let fields = try skip.fingerprintFields()
        #expect(skip.skipInvalid && fields.contains { $0 == ("training.skip_invalid", "true") })
    }
}

