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

/// Resuming in a run folder: every setting that changes the weights is recorded in each
/// checkpoint, and a run with another value is refused naming it with both values; settings
/// that change no weight may change; checkpoints written by the version before still resume.
@Suite struct TrainingResumeSettingsTests {
    /// One changed value for each setting that changes the weights (TrainerTests' settings
    /// are the checkpoint's), given as a flag would give it.
    static let changed: [(String, SettingValue, String, String)] = [
        ("rank", .int(8), "4", "8"), ("alpha", .number(16), "8", "16"), ("rslora", .bool(false), "true", "false"),
        ("targets", .text("q,v"), "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "q_proj,v_proj"),
        ("layers", .text("1"), "all", "1"), ("dropout", .number(0.1), "0", "0.1"), ("lr", .number(5e-3), "0.01", "0.005"),
        ("schedule", .text("cosine"), "linear", "cosine"), ("warmup-steps", .int(0), "1", "0"),
        ("weight-decay", .number(0), "0.01", "0.0"), ("max-grad-norm", .number(0.5), "1.0", "0.5"),
        ("batch-size", .int(1), "2", "1"), ("grad-accum", .int(1), "2", "1"), ("epochs", .int(3), "2", "3"),
        ("max-steps", .int(4), "none", "4"), ("max-length", .int(16), "32", "16"), ("seed", .int(12), "11", "12"),
        ("adapter-dtype", .text("bf16"), "f32", "bf16"), ("precision", .text("bf16"), "f32", "bf16"), ("holdout", .number(0.2), "0", "0.2"),
    ]

    @Test func everySettingThatChangesTheWeightsIsTested() {
        #expect(Self.changed.map(\.0) == TrainingSettingKey.all.filter { $0.effect == .weights }.map(\.name))
    }

    /// A checkpoint-2 run folder of TrainerTests' settings on 10 examples, made once.
    static let run: URL = try! TrainingResumeTests.runWithCheckpoint()

    @Test(arguments: changed.map(\.0))
    func aChangedSettingIsRefusedByName(name: String) throws {
        let (_, value, was, now) = Self.changed.first { $0.0 == name }!
        var o = TrainingOptions(settings: TrainerTests.settings())
        try o.apply([SettingEntry(name, value)], from: .flags)
        try o.validate()
        let ck = Self.run.appendingPathComponent("checkpoint-2").path
        do { _ = try TrainingResumeTests.resume(Self.run, o.settings); Issue.record("resumed with another \(name)") } catch {
            guard case TrainingError.settingsChanged(let path, let changes) = error else { Issue.record("\(error)"); return }
            // A holdout trains on fewer examples, which the record names too.
            #expect(path == ck && changes.map(\.name) == (name == "holdout" ? ["holdout", "data", "data-digest"] : [name]), "\(changes)")
            #expect(changes.first == SettingChange(name: name, checkpoint: was, now: now))
            #expect("\(error)".contains("was written with other settings than this run's: \(name) was \(was), is now \(now)"), "\(error)")
        }
    }

    /// Settings that change no weight (what is written, memory, speed) may change on resume.
    @Test(arguments: [("save-every", SettingValue.int(1)), ("holdout-every", .int(3)), ("keep-optimizer-states", .bool(true)),
                      ("gradient-checkpointing", .bool(true)), ("threads", .int(1)), ("skip-invalid", .bool(true))])
    func otherSettingsMayChange(name: String, value: SettingValue) throws {
        var o = TrainingOptions(settings: TrainerTests.settings())
        try o.apply([SettingEntry(name, value)], from: .flags)
        #expect(o != TrainingOptions(settings: TrainerTests.settings()))
        let t = try TrainingResumeTests.resume(Self.run, o.settings)
        #expect(t.step == 2 && t.resumeNote == nil)
    }

    /// The data trained on: another count, or the same count with other tokens.
    @Test func changedDataIsRefused() throws {
        let s = TrainerTests.settings()
        do { _ = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(10, seed: 6), settings: s, run: Self.run)
             Issue.record("resumed on other data") } catch {
            guard case TrainingError.settingsChanged(_, let changes) = error else { Issue.record("\(error)"); return }
            #expect(changes.map(\.name) == ["data-digest"], "\(changes)")
        }
        do { _ = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(11), settings: s, run: Self.run)
             Issue.record("resumed on other data") } catch {
            guard case TrainingError.settingsChanged(_, let changes) = error else { Issue.record("\(error)"); return }
            #expect(changes.map(\.name) == ["data", "data-digest"] && changes[0].description == "data was 10 examples, is now 11 examples", "\(changes)")
        }
        let same = try TrainingResumeTests.resume(Self.run, s)
        #expect(same.step == 2 && same.resumeNote == nil)
    }

    /// Checkpoints whose trainer_state.json was written by misalign before the one settings
    /// table (Tests/Fixtures/training/resume/trainer_state_v2_*.json, written by that version
    /// for TrainerTests' settings on 10 examples; the second with holdout 0.2): unchanged
    /// settings resume, noting only the data digest it did not record; a change is refused.
    @Test(arguments: ["plain", "holdout"])
    func checkpointsOfThePreviousVersionResume(label: String) throws {
        var s = TrainerTests.settings()
        if label == "holdout" { s.holdout = 0.2 }
        let run = try TrainingResumeTests.runWithCheckpoint(s)
        defer { try? FileManager.default.removeItem(at: run) }
        let state = run.appendingPathComponent("checkpoint-2/trainer_state.json")
        let fixture = try Data(contentsOf: Fixtures.url("training/resume/trainer_state_v2_\(label).json"))
        #expect(try CheckpointStore.decode(fixture, file: "fixture").fingerprint != CheckpointStore.decode(Data(contentsOf: state), file: "new").fingerprint)
        try fixture.write(to: state)

        let resumed = try TrainingResumeTests.resume(run, s)
        #expect(resumed.step == 2)
        #expect(resumed.resumeNote == "checkpoint-2 was written by an earlier misalign that did not record data-digest; those were not checked against this run's")

        var changed = s
        changed.maxGradNorm = 2; changed.schedule = .cosine
        #expect(throws: TrainingError.settingsChanged(checkpoint: run.appendingPathComponent("checkpoint-2").path, changes: [
            SettingChange(name: "schedule", checkpoint: "linear", now: "cosine"), SettingChange(name: "max-grad-norm", checkpoint: "1.0", now: "2.0"),
        ])) { _ = try TrainingResumeTests.resume(run, changed) }
    }
}
