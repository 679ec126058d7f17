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

/// One table of training settings (`TrainingSettingKey.all`): flags, a JSON config and an
/// experiment's `training:` section decode the same settings to equal `TrainingOptions` and
/// equal fingerprints, with the same checks and messages.
@Suite struct TrainingSettingsTableTests {
    /// Every setting away from its default, as `misalign train`'s flags hand them over
    /// (typed by ArgumentParser; lists as the text given).
    static let flags: [SettingEntry] = [
        SettingEntry("rank", .int(8)), SettingEntry("alpha", .number(16)), SettingEntry("rslora", .bool(false)),
        SettingEntry("targets", .text("q,v_proj,down")), SettingEntry("layers", .text("1, 0")), SettingEntry("dropout", .number(0.05)),
        SettingEntry("lr", .number(2e-4)), SettingEntry("schedule", .text("cosine")), SettingEntry("warmup-steps", .int(3)),
        SettingEntry("weight-decay", .number(0)), SettingEntry("max-grad-norm", .number(0.5)), SettingEntry("batch-size", .int(4)),
        SettingEntry("grad-accum", .int(2)), SettingEntry("epochs", .int(3)), SettingEntry("max-steps", .int(40)),
        SettingEntry("max-length", .int(512)), SettingEntry("adapter-dtype", .text("bf16")), SettingEntry("holdout", .number(0.1)),
        SettingEntry("save-every", .int(5)), SettingEntry("holdout-every", .int(2)), SettingEntry("skip-invalid", .bool(true)),
        SettingEntry("gradient-checkpointing", .bool(true)), SettingEntry("threads", .int(3)),
    ]

    /// The same settings in a JSON config, with its aliases and `_` spellings.
    static let json = """
        {"r": 8, "lora_alpha": 16, "use-rslora": false, "target_modules": ["q_proj", "v", "down_proj"], "layers": [1, 0],
         "lora-dropout": 0.05, "learning_rate": 2e-4, "schedule": "cosine", "warmup_steps": 3, "weight-decay": 0,
         "max_grad_norm": 0.5, "batch-size": 4, "gradient_accumulation": 2, "epochs": 3, "max-steps": 40, "max_length": 512,
         "adapter-dtype": "bf16", "holdout": 0.1, "checkpoint_every": 5, "holdout-every": 2, "skip-invalid": true,
         "recompute": true, "threads": 3}
        """

    /// The same settings in an experiment's training: section.
    static let yaml = """
        training:
          rank: 8
          alpha: 16
          rslora: false
          targets: [q_proj, v_proj, down_proj]
          layers: [1, 0]
          dropout: 0.05
          lr: 2.0e-4
          schedule: cosine
          warmup_steps: 3
          weight_decay: 0
          max_grad_norm: 0.5
          batch_size: 4
          grad_accum: 2
          epochs: 3
          max_steps: 40
          max_length: 512
          adapter_dtype: bf16
          holdout: 0.1
          checkpoint_every: 5
          holdout_every: 2
          skip_invalid: true
          gradient_checkpointing: true
          threads: 3

        """

    static let experimentHead = "model: m\noutput: out\ndatasets: {medical: med.jsonl}\njudges: {models: [\"openai:gpt-4.1-mini\"]}\n"

    static func fromJSON(_ text: String) throws -> TrainingOptions {
        let dir = Fixtures.temporaryDirectory("settings-json")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("c.json")
        try text.write(to: url, atomically: true, encoding: .utf8)
        var o = TrainingOptions()
        try o.apply(configFile: url)
        try o.validate()
        return o
    }

    static func experiment(_ training: String, base: URL = URL(fileURLWithPath: "/tmp/cfg")) throws -> Experiment {
        try Experiment.parse(experimentHead + training, file: "x.yaml", base: base)
    }

    @Test func flagsJSONAndYAMLDecodeToEqualSettingsAndFingerprints() throws {
        var fromFlags = TrainingOptions()
        try fromFlags.apply(Self.flags, from: .flags)
        try fromFlags.validate()
        let fromJSON = try Self.fromJSON(Self.json)
        let dir = Fixtures.temporaryDirectory("settings-yaml")
        defer { try? FileManager.default.removeItem(at: dir) }
        try "{}\n".write(to: dir.appendingPathComponent("med.jsonl"), atomically: true, encoding: .utf8)
        let e = try Self.experiment(Self.yaml, base: dir)
        let fromYAML = TrainingOptions(settings: e.training, threads: e.threads, skipInvalid: e.skipInvalid)

        #expect(fromFlags == fromJSON)
        #expect(fromFlags == fromYAML)
        let s = fromFlags.settings
        #expect(s.lora == LoRAConfig(rank: 8, alpha: 16, useRSLoRA: false, targets: [.q, .v, .down], layers: [1, 0], dropout: 0.05))
        #expect(s.learningRate == 2e-4 && s.schedule == .cosine && s.warmupSteps == 3 && s.weightDecay == 0 && s.maxGradNorm == 0.5)
        #expect(s.batchSize == 4 && s.gradientAccumulation == 2 && s.epochs == 3 && s.maxSteps == 40 && s.maxLength == 512)
        #expect(s.adapterDType == .bf16 && s.holdout == 0.1 && s.saveEvery == 5 && s.holdoutEvery == 2 && s.recompute)
        #expect(fromFlags.threads == 3 && fromFlags.skipInvalid && s.explicitLoRA == Set(LoRASetting.allCases))

        let fingerprints = [fromFlags, fromJSON, fromYAML].map { $0.settings.fingerprint(dataCount: 10, dataDigest: "0123") }
        #expect(Set(fingerprints).count == 1, "\(fingerprints)")
        #expect(fromFlags.experimentRecord().map { "\($0.0)=\($0.1)" } == fromYAML.experimentRecord().map { "\($0.0)=\($0.1)" })
        // The experiment's fingerprint is this record.
        let fields = try e.fingerprintFields().filter { $0.0.hasPrefix("training.") }
        #expect(fields.map(\.0) == fromYAML.experimentRecord().map(\.0) && fields.map(\.1) == fromYAML.experimentRecord().map(\.1))
    }

    /// Nothing given: the study protocol's defaults, the same in every source.
    @Test func nothingGivenIsTheDefaults() throws {
        var none = TrainingOptions()
        try none.apply([], from: .flags)
        #expect(none == TrainingOptions() && none.settings == TrainingSettings())
        #expect(try Self.fromJSON("{}") == TrainingOptions())
        let e = try Self.experiment("")
        #expect(TrainingOptions(settings: e.training, threads: e.threads, skipInvalid: e.skipInvalid) == TrainingOptions())
        #expect(TrainingSettings().learningRate == 1e-5 && TrainingSettings().lora.rank == 32 && TrainingSettings().gradientAccumulation == 8)
    }

    /// Every key is declared once, under names that no other key uses; the fingerprints cover
    /// every setting that changes the weights, and only those that change what is written.
    @Test func theTableDeclaresEachSettingOnce() {
        let keys = TrainingSettingKey.all
        var owner: [String: String] = [:]
        for k in keys {
            for n in k.names { #expect(owner.updateValue(k.name, forKey: n) == nil, "\(n) is a name of \(owner[n]!) and \(k.name)") }
        }
        let weights = keys.filter { $0.effect == .weights }.map(\.name)
        #expect(weights == ["rank", "alpha", "rslora", "targets", "layers", "dropout", "lr", "schedule", "warmup-steps", "weight-decay",
                            "max-grad-norm", "batch-size", "grad-accum", "epochs", "max-steps", "max-length", "seed", "adapter-dtype", "precision",
                            "holdout"])
        #expect(keys.filter { $0.effect == .outputs }.map(\.name) == ["save-every", "holdout-every", "skip-invalid"])
        #expect(keys.filter { $0.effect == .none }.map(\.name) == ["keep-optimizer-states", "gradient-checkpointing", "threads"])
        #expect(keys.filter { !$0.sources.contains(.yaml) }.map(\.name) == ["seed", "keep-optimizer-states"])
        #expect(TrainingSettingKey.named("checkpoint_every")?.name == "save-every" && TrainingSettingKey.named("learning_rate")?.name == "lr")
        #expect(TrainingSettingKey.named("seed", in: .yaml) == nil && TrainingSettingKey.named("seed", in: .json)?.name == "seed")
    }

    /// The same bad value gets the same message from every source; only the place differs
    /// (the YAML key and line, the JSON file, the flag's setting name).
    @Test(arguments: [
        ("rank", "100000", "is 100000; must be <= 65536"),
        ("epochs", "0", "is 0; must be >= 1"),
        ("max_steps", "1.5", "expected an integer, found "),
        ("schedule", "\"steep\"", "expected linear, constant or cosine, found "),
        ("adapter_dtype", "\"f16\"", "expected f32 or bf16, found "),
        ("dropout", "1", "must be in [0, 1)"),
        ("layers", "[-1]", "lists -1; layer indices are >= 0"),
        ("targets", "[\"qq\"]", "unknown module \"qq\""),
        ("lr", "20", "above 10.0 training only diverges"),
        ("rslora", "1", "expected true or false, found "),
    ])
    func oneMessageForEverySource(key: String, value: String, words: String) throws {
        let name = TrainingSettingKey.named(key)!.name
        let json: String
        do { _ = try Self.fromJSON("{\"\(key)\": \(value)}"); json = "accepted" } catch { json = "\(error)" }
        // A wrong type is named with the file; a range once the flags are merged in, as the flags'.
        #expect(json.hasPrefix("setting \(name): ") && json.contains(words), "\(json)")
        #expect(json.contains(".json: ") == (words.hasPrefix("expected") || words.hasPrefix("unknown")), "\(json)")
        let yaml: String
        do { _ = try Self.experiment("training:\n  \(key): \(value)\n"); yaml = "accepted" } catch { yaml = "\(error)" }
        #expect(yaml.hasPrefix("x.yaml:6: training.\(key): ") && yaml.contains(words), "\(yaml)")
        // As a flag: the value typed the way ArgumentParser hands it over.
        let v: SettingValue = value.hasPrefix("\"") ? .text(String(value.dropFirst().dropLast()))
            : value.hasPrefix("[") ? .text(value.dropFirst().dropLast().replacingOccurrences(of: "\"", with: ""))
            : Int(value).map { .int($0) } ?? .number(Double(value)!)
        var o = TrainingOptions()
        let flag: String
        do { try o.apply([SettingEntry(name, v)], from: .flags); try o.validate(); flag = "accepted" } catch { flag = "\(error)" }
        #expect(flag.hasPrefix("setting \(name): ") && flag.contains(words), "\(flag)")
    }

    /// Unknown keys, a setting given twice under two names, and a setting a source does not
    /// have are refused naming the key.
    @Test func unknownAndDuplicateKeys() throws {
        #expect(throws: TrainingError.self) { _ = try Self.fromJSON(#"{"learning_rat": 1}"#) }
        do { _ = try Self.fromJSON(#"{"lr": 1e-4, "learning-rate": 2e-4}"#); Issue.record("accepted") } catch {
            #expect("\(error)".contains("setting lr: ") && "\(error)".contains("is given twice, as lr and as learning-rate"), "\(error)")
        }
        do { _ = try Self.experiment("training:\n  seed: 3\n"); Issue.record("accepted") } catch {
            #expect("\(error)".hasPrefix("x.yaml:6: training.seed: unknown key; known keys here: rank, alpha,"), "\(error)")
        }
        // An experiment's section takes the flags' aliases too.
        #expect(try Self.experiment("training:\n  learning_rate: 0.001\n  save_every: 4\n").training.learningRate == 0.001)
    }

    /// A checkpoint of an experiment's run written with other settings (the trainer's refusal)
    /// is reported as `misalign run` reports a changed config, under the config's keys.
    @Test func theRunnerWordsACheckpointsChangesAsConfigKeys() {
        let e = PipelineRunner.configChanged(URL(fileURLWithPath: "/r"), RunID(dataset: "medical", seed: 0), checkpoint: "/r/ck/checkpoint-2", changes: [
            SettingChange(name: "save-every", checkpoint: "2", now: "4"), SettingChange(name: "warmup-steps", checkpoint: "5", now: "0"),
            SettingChange(name: "data", checkpoint: "10 examples", now: "11 examples"),
        ])
        #expect(e.description == "/r was started with another config (/r/ck/checkpoint-2: training.checkpoint_every was 2, is now 4; "
                + "training.warmup_steps was 5, is now 0; datasets.medical (data) was 10 examples, is now 11 examples); "
                + "use another output folder, or restore the old setting")
    }

    /// Experiment stores written before the one record hold some values in another form
    /// (`64.0`, `0.0`, layer lists in file order, as `Experiment.fingerprintFields` wrote them);
    /// those mean the same and must keep matching, while a real change does not.
    @Test func storedTrainingFieldsCompareByMeaning() {
        #expect(RunStore.sameField("training.alpha", "64.0", "64"))
        #expect(RunStore.sameField("training.dropout", "0.0", "0"))
        #expect(RunStore.sameField("training.layers", "3,1", "1,3"))
        #expect(RunStore.sameField("training.targets", "q_proj,v_proj", "v_proj,q_proj"))
        #expect(!RunStore.sameField("training.lr", "0.002", "0.001"))
        #expect(!RunStore.sameField("training.layers", "all", "0,1"))
        // Every table's settings compare by meaning; other fields (hashes, names) as text.
        #expect(RunStore.sameField("evaluation.top_p", "1.0", "1"))
        #expect(!RunStore.sameField("rubrics.evil", "1.0", "1"), "only settings are compared by meaning")
    }
}
