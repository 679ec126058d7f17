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

/// A resumed run must have the settings its checkpoint was written with; the refusal names
/// each changed setting and both values.
@Suite struct TrainingResumeTests {
    /// A run folder with checkpoint-2 (resumable) of TrainerTests' settings on 10 examples.
    static func runWithCheckpoint(_ settings: TrainingSettings = TrainerTests.settings()) throws -> URL {
        let run = Fixtures.temporaryDirectory("resume")
        let t = try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(10), settings: settings, run: run)
        _ = try t.train { $0.step == 2 ? .stop : .proceed }
        return run
    }

    static func resume(_ run: URL, _ settings: TrainingSettings) throws -> LoRATrainer {
        try LoRATrainer(weights: TrainerTests.weights, examples: TrainerTests.examples(10), settings: settings, run: run)
    }

    @Test func changedSettingsAreNamedWithBothValues() throws {
        let run = try Self.runWithCheckpoint()
        defer { try? FileManager.default.removeItem(at: run) }
        let ck = run.appendingPathComponent("checkpoint-2").path
        var s = TrainerTests.settings()
        s.learningRate = 5e-3
        #expect(throws: TrainingError.settingsChanged(checkpoint: ck, changes: [SettingChange(name: "lr", checkpoint: "0.01", now: "0.005")])) {
            _ = try Self.resume(run, s)
        }
        s = TrainerTests.settings()
        s.schedule = .cosine; s.weightDecay = 0; s.maxGradNorm = 0.5; s.maxSteps = 4; s.lora.dropout = 0.1; s.adapterDType = .bf16; s.warmupSteps = 0
        do { _ = try Self.resume(run, s); Issue.record("resumed with other settings") } catch {
            guard case TrainingError.settingsChanged(_, let changes) = error else { Issue.record("\(error)"); return }
            #expect(changes.map(\.name) == ["dropout", "schedule", "warmup-steps", "weight-decay", "max-grad-norm", "max-steps", "adapter-dtype"])
            #expect(changes.first { $0.name == "max-steps" } == SettingChange(name: "max-steps", checkpoint: "none", now: "4"))
            let text = "\(error)"
            #expect(text.contains("schedule was linear, is now cosine") && text.contains("another run folder") && !text.contains("--") && !text.contains("v2;"), "\(text)")
        }
        // A different rank is named too (before the optimizer state's size could complain).
        s = TrainerTests.settings()
        s.lora.rank = 8; s.epochs = 3
        #expect(throws: TrainingError.settingsChanged(checkpoint: ck, changes: [SettingChange(name: "rank", checkpoint: "4", now: "8"),
                                                                                 SettingChange(name: "epochs", checkpoint: "2", now: "3")])) {
            _ = try Self.resume(run, s)
        }
        // The same settings resume.
        let same = try Self.resume(run, TrainerTests.settings())
        #expect(same.step == 2 && same.resumeNote == nil)
    }

    /// Checkpoints written before the fingerprint recorded the optimizer settings: what they
    /// record is still checked; the rest is named in a note.
    @Test func checkpointsOfEarlierVersions() throws {
        let s = TrainerTests.settings()
        let run = try Self.runWithCheckpoint(s)
        defer { try? FileManager.default.removeItem(at: run) }
        let stateURL = run.appendingPathComponent("checkpoint-2/trainer_state.json")
        var state = try CheckpointStore.decode(Data(contentsOf: stateURL), file: stateURL.path)
        // The old code's fingerprint, byte for byte.
        let l = s.lora
        state.fingerprint = "r\(l.rank) a\(l.alpha) rs\(l.useRSLoRA) t\(l.targets.sorted().map(\.rawValue)) l\(l.layers?.sorted() ?? []) "
            + "b\(s.batchSize) ga\(s.gradientAccumulation) len\(s.maxLength) seed\(s.seed) n10"
        try Data(CheckpointStore.encode(state).utf8).write(to: stateURL)

        let resumed = try Self.resume(run, s)
        #expect(resumed.step == 2)
        let note = try #require(resumed.resumeNote)
        #expect(note.contains("checkpoint-2 was written by an earlier misalign") && note.contains("lr, schedule, warmup-steps"), "\(note)")

        var changed = s
        changed.seed = 12
        #expect(throws: TrainingError.settingsChanged(checkpoint: run.appendingPathComponent("checkpoint-2").path,
                                                      changes: [SettingChange(name: "seed", checkpoint: "11", now: "12")])) {
            _ = try Self.resume(run, changed)
        }

        state.fingerprint = "something else"
        try Data(CheckpointStore.encode(state).utf8).write(to: stateURL)
        do { _ = try Self.resume(run, s); Issue.record("an unreadable fingerprint was accepted") } catch {
            #expect("\(error)".contains("records its settings in a form this version cannot read"), "\(error)")
        }
    }

    @Test func fingerprintRoundTrips() {
        var s = TrainingSettings()
        s.lora.layers = [3, 1]; s.maxSteps = 7; s.adapterDType = .bf16
        let f = s.fingerprint(dataCount: 42)
        #expect(f.hasPrefix("v2; rank=32; alpha=64; rslora=true; targets=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj; layers=1,3;"))
        let parsed = TrainingSettings.parseFingerprint(f)!
        #expect(parsed["lr"] == "1e-05" && parsed["max-steps"] == "7" && parsed["adapter-dtype"] == "bf16" && parsed["data"] == "42 examples")
        let diff = s.compare(toFingerprint: f, dataCount: 42)!
        #expect(diff.changes.isEmpty && diff.unrecorded.isEmpty)
        #expect(s.compare(toFingerprint: f, dataCount: 41)!.changes == [SettingChange(name: "data", checkpoint: "42 examples", now: "41 examples")])
    }
}
