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

/// `misalign train`'s flags and its JSON `--config` go through the library's one settings
/// table: the same settings either way write the same checkpoint fingerprint, which is the one
/// an experiment's `training:` section gives; a rerun in the --out folder with changed settings
/// is refused naming each, and with the same ones resumes.
@Suite struct TrainCLISettingsTests {
    static let flags = ["--lr", "2e-3", "--schedule", "cosine", "--warmup-steps", "0", "--rank", "2", "--alpha", "4", "--no-rslora",
                        "--targets", "q,v", "--layers", "1", "--dropout", "0.1", "--max-steps", "2", "--save-every", "1",
                        "--adapter-dtype", "bf16", "--seed", "3", "--weight-decay", "0"]
    static let json = #"{"learning_rate": 2e-3, "schedule": "cosine", "warmup_steps": 0, "r": 2, "lora_alpha": 4, "rslora": false, "#
        + #""target_modules": ["q_proj", "v_proj"], "layers": [1], "lora_dropout": 0.1, "max-steps": 2, "checkpoint_every": 1, "#
        + #""adapter-dtype": "bf16", "seed": 3, "weight-decay": 0}"#
    static let yaml = "training:\n  lr: 2.0e-3\n  schedule: cosine\n  warmup_steps: 0\n  rank: 2\n  alpha: 4\n  rslora: false\n"
        + "  targets: [q_proj, v_proj]\n  layers: [1]\n  dropout: 0.1\n  max_steps: 2\n  checkpoint_every: 1\n  adapter_dtype: bf16\n"
        + "  weight_decay: 0\n  batch_size: 2\n  grad_accum: 1\n  max_length: 64\n"

    static func fingerprint(_ run: URL, step: Int) throws -> String {
        let url = run.appendingPathComponent("checkpoint-\(step)/trainer_state.json")
        return try CheckpointStore.decode(Data(contentsOf: url), file: url.path).fingerprint
    }

    @Test func flagsAndConfigWriteOneFingerprintAndResumeIsChecked() throws {
        let (dir, args) = try TrainCLIValidationTests.setUp("train-cli-settings")
        defer { try? FileManager.default.removeItem(at: dir) }
        let runA = dir.appendingPathComponent("run"), runB = dir.appendingPathComponent("run-config")
        let byFlags = try CLI.run(args + Self.flags)
        #expect(byFlags.status == 0, "\(byFlags.err)")
        let config = dir.appendingPathComponent("c.json")
        try Self.json.write(to: config, atomically: true, encoding: .utf8)
        let base = args.map { $0 == runA.path ? runB.path : $0 }
        let byConfig = try CLI.run(base + ["--config", config.path])
        #expect(byConfig.status == 0, "\(byConfig.err)")
        let a = try Self.fingerprint(runA, step: 2), b = try Self.fingerprint(runB, step: 2)
        #expect(a == b, "\(a)\n\(b)")

        // The experiment's section gives the same settings (the seed is each run's: 3 here).
        let e = try Experiment.parse("model: m\noutput: out\ndatasets: {d: d.jsonl}\njudges: {models: [\"openai:j\"]}\n" + Self.yaml,
                                     file: "x.yaml", base: dir)
        var s = e.training
        s.seed = 3
        let recorded = try #require(TrainingSettings.parseFingerprint(a))
        for (name, value) in s.resumeSettings(dataCount: 5) where name != "data" {
            #expect(recorded[name] == value, "\(name): \(recorded[name] ?? "-") in the checkpoint, \(value) from YAML")
        }

        // Other settings in the same --out folder: refused, each named with both values.
        let changed = try CLI.run(args + Self.flags.map { $0 == "2e-3" ? "1e-3" : $0 == "cosine" ? "linear" : $0 })
        #expect(changed.status == 1)
        #expect(changed.err.contains("was written with other settings than this run's: lr was 0.002, is now 0.001; schedule was cosine, is now linear."),
                "\(changed.err)")
        // A setting that changes no weight may change; the same settings resume (at the end: nothing left to train).
        let same = try CLI.run(args + Self.flags + ["--keep-optimizer-states", "--threads", "2"])
        #expect(same.status == 0 && same.err.contains("at step 2 of 2") && same.out.contains("trained 2 steps; last checkpoint: "), "\(same.err)\n\(same.out)")
        #expect(try Self.fingerprint(runA, step: 2) == a)
    }
}
