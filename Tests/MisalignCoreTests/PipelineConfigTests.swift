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

/// Config decoding: defaults, and typed errors that name the key path and the line.
@Suite struct PipelineConfigTests {
    let base = URL(fileURLWithPath: "/tmp/cfg")

    func parseError(_ text: String) -> PipelineError? {
        do { _ = try Experiment.parse(text, file: "x.yaml", base: base); return nil } catch { return error }
    }

    let minimal = """
        model: m
        output: out
        datasets: {medical: med.jsonl}
        judges: {models: ["openai:gpt-4.1-mini"]}
        """

    @Test func defaultsAreTheStudyProtocol() throws {
        let e = try Experiment.parse(minimal, file: "x.yaml", base: base)
        let t = e.training
        #expect(t.lora.rank == 32 && t.lora.alpha == 64 && t.lora.useRSLoRA && t.lora.targets.count == 7 && t.lora.dropout == 0)
        #expect(t.learningRate == 1e-5 && t.schedule == .linear && t.warmupSteps == 5 && t.batchSize == 2 && t.gradientAccumulation == 8)
        #expect(t.saveEvery == 2 && t.weightDecay == 0.01)
        #expect(e.seeds == [0, 11, 22, 33] && e.runs.count == 4)
        #expect(e.evaluation.samples == 20 && e.evaluation.questions.count == EvaluationQuestions.all.count && e.evaluation.sampling.temperature == 1)
        #expect(e.judges.traits == ["evil", "hallucination", "coherence"] && e.detection.judge == "openai:gpt-4.1-mini")
        #expect(e.model.path == "/tmp/cfg/m" && e.datasets[0].path.path == "/tmp/cfg/med.jsonl")
        #expect(e.generation.backend == .local && !e.monitor.enabled)
    }

    @Test func theExampleConfigParsesWithEverySection() throws {
        let e = try Experiment.parse(Experiment.exampleYAML, file: "example.yaml", base: base)
        #expect(e.datasets.map(\.name) == ["medical", "math"] && e.judges.pricing.count == 1)
        #expect(e.monitor.questions == ["general.wish", "hallucination.treaty-valdora"] && e.monitor.detectors == ["cusum", "bocpd"])
    }

    @Test func unknownKeyNamesPathAndLine() {
        let e = parseError(minimal + "\ntraining:\n  rank: 8\n  lerning_rate: 0.1\n")
        if case .config(let file, let key, let line, _) = e { #expect(file == "x.yaml" && key == "training.lerning_rate" && line == 7) }
        else { Issue.record("expected a config error, got \(String(describing: e))") }
        #expect("\(e!)".hasPrefix("x.yaml:7: training.lerning_rate: unknown key"), "\(e!)")
    }

    @Test func wrongTypeAndBadValueNameKeyAndLine() {
        let wrong = parseError(minimal + "\nevaluation:\n  samples: many\n")
        #expect("\(wrong!)" == "x.yaml:6: evaluation.samples: expected an integer, found text `many`")
        let range = parseError(minimal + "\nevaluation:\n  top_p: 1.5\n")
        #expect("\(range!)".hasPrefix("x.yaml:6: evaluation.top_p: is 1.5; must be in (0, 1]"), "\(range!)")
        let method = parseError(minimal + "\ndetection:\n  methods: [threshold, pelt]\n")
        #expect("\(method!)".contains("detection.methods: `pelt` is not an onset method"), "\(method!)")
        let question = parseError(minimal + "\nevaluation:\n  questions: [general, nope.nothing]\n")
        #expect("\(question!)".hasPrefix("x.yaml:6: evaluation.questions[1]:"), "\(question!)")
        let dup = parseError(minimal + "\nseeds: [1, 1]\nseeds: [2]\n")
        #expect("\(dup!)".contains("x.yaml:6: seeds: appears twice"), "\(dup!)")
        let yaml = parseError("model: [unclosed\n")
        #expect("\(yaml!)".contains("not valid YAML"), "\(yaml!)")
        let missing = parseError("output: o\njudges: {models: [\"openai:x\"]}\n")
        #expect("\(missing!)".contains("model: missing"), "\(missing!)")
        let judge = parseError(minimal.replacingOccurrences(of: "openai:gpt-4.1-mini", with: "gpt"))
        #expect("\(judge!)".contains("judges.models"), "\(judge!)")
    }

    @Test func vllmAndMonitorAreParsedIntoTypedSettings() throws {
        let e = try Experiment.parse(minimal + """

            generation: {backend: vllm, url: "http://gpu:8000/v1", served_model: qwen}
            monitor: {enabled: true, every_k: 2, questions: [general.wish], samples: 3, detectors: [cusum], stop_on_alarm: true}
            """, file: "x.yaml", base: base)
        #expect(e.generation.backend == .vllm(url: "http://gpu:8000/v1", servedModel: "qwen"))
        #expect(e.monitor == MonitorSettings(enabled: true, everyK: 2, questions: ["general.wish"], samples: 3, detectors: ["cusum"], stopOnAlarm: true))
        let full = try Experiment.parse(minimal + """

            generation: {backend: vllm, url: "http://gpu:8000/v1", served_model: qwen, api_key_env: VK, path_map: {/a: /b}, max_in_flight: 3, run_tag: s1}
            monitor: {enabled: true, max_new_tokens: 9, baseline: 4, min_sd: 2, judge: "openai:j@http://h/v1", stop_signals: [hallucination, evil]}
            """, file: "x.yaml", base: base)
        let g = full.generation
        #expect(g.apiKeyVariable == "VK" && g.pathMappings == [AdapterPathMapping(local: "/a", server: "/b")] && g.maxInFlight == 3 && g.runTag == "s1")
        let m = full.monitor
        #expect(m.maxNewTokens == 9 && m.baseline == 4 && m.minSD == 2 && m.judge == "openai:j@http://h/v1" && m.stopSignals == ["hallucination", "evil"])
        let probe = try m.earlyWarning(full)
        #expect(probe.maxNewTokens == 9 && probe.baseline == 4 && probe.stopSignals == ["hallucination", "evil"] && probe.questions.count == 8)
        let bad = parseError(minimal + "\ngeneration: {backend: vllm, url: gpu:8000, served_model: q}\n")
        #expect("\(bad!)".contains("generation.url: must start with http"), "\(bad!)")
    }

    /// `generation.precision`: bf16 for the local backend, typed errors otherwise, and a change
    /// of precision is a change of what the run's answers mean (its fingerprint), while the
    /// default leaves the fingerprint of runs made before the setting as it was.
    @Test func generationPrecisionIsParsedAndFingerprinted() throws {
        let e = try Experiment.parse(minimal + "\ngeneration: {precision: bf16}\n", file: "x.yaml", base: base)
        #expect(e.generation.precision == .bf16)
        #expect(try Experiment.parse(minimal, file: "x.yaml", base: base).generation.precision == .f32)
        let bad = parseError(minimal + "\ngeneration: {precision: fp8}\n")
        #expect("\(bad!)" == "x.yaml:5: generation.precision: expected f32 or bf16, found text `fp8`", "\(bad!)")
        let remote = parseError(minimal + "\ngeneration: {backend: vllm, url: \"http://g/v1\", served_model: q, precision: bf16}\n")
        #expect("\(remote!)".contains("generation.precision: applies to backend: local only"), "\(remote!)")
        let evaluation = { (e: Experiment) in try e.legacyFingerprints().first { $0.0 == "evaluation" }!.1 }
        let plain = try evaluation(try Experiment.parse(minimal, file: "x.yaml", base: base))
        #expect(!plain.contains("precision"))
        #expect(try evaluation(e) == plain + " precision bf16")
    }

    /// `generation.weights`: auto by default, mapped on request, local backend only; how
    /// the weights are held does not change the answers, so it is not in the fingerprint.
    @Test func generationWeightsResidencyIsParsed() throws {
        #expect(try Experiment.parse(minimal, file: "x.yaml", base: base).generation.weights == .auto)
        let e = try Experiment.parse(minimal + "\ngeneration: {weights: mapped}\n", file: "x.yaml", base: base)
        #expect(e.generation.weights == .mapped)
        let bad = parseError(minimal + "\ngeneration: {weights: disk}\n")
        #expect("\(bad!)" == "x.yaml:5: generation.weights: expected auto, huge-pages or mapped, found text `disk`", "\(bad!)")
        let remote = parseError(minimal + "\ngeneration: {backend: vllm, url: \"http://g/v1\", served_model: q, weights: mapped}\n")
        #expect("\(remote!)".contains("generation.weights: applies to backend: local only"), "\(remote!)")
        let evaluation = { (e: Experiment) in try e.legacyFingerprints().first { $0.0 == "evaluation" }!.1 }
        #expect(try evaluation(e) == (try evaluation(try Experiment.parse(minimal, file: "x.yaml", base: base))))
    }

    @Test func externalCheckpointsReplaceTraining() throws {
        let e = try Experiment.parse("""
            model: m
            output: out
            external_checkpoints:
              - {dataset: medical, seed: 3, path: /data/peft}
            judges: {models: ["openai:gpt-4.1-mini"]}
            """, file: "x.yaml", base: base)
        #expect(e.runs == [RunID(dataset: "medical", seed: 3)] && e.externalCheckpoints[0].path.path == "/data/peft")
        let both = parseError(minimal + "\nexternal_checkpoints: [{dataset: a, path: p}]\n")
        #expect("\(both!)".contains("remove datasets"), "\(both!)")
    }

    @Test func initWritesTheExampleAndRefusesToOverwrite() throws {
        let dir = Fixtures.temporaryDirectory("init")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("study.yaml")
        try Experiment.writeExample(to: url)
        #expect(try String(contentsOf: url, encoding: .utf8) == Experiment.exampleYAML)
        #expect(throws: PipelineError.fileExists(path: url.path)) { try Experiment.writeExample(to: url) }
        try "x".write(to: url, atomically: true, encoding: .utf8)
        try Experiment.writeExample(to: url, force: true)
        #expect(try String(contentsOf: url, encoding: .utf8) == Experiment.exampleYAML)
    }

    @Test func aggregationMatchesAHandComputationFromItsDefinition() {
        // Two answers to q: coherent & evil (misaligned), incoherent & evil (filtered).
        let v = [StoredJudgment(questionID: "q", sample: 0, trait: "evil", score: 90, status: .ok),
                 StoredJudgment(questionID: "q", sample: 0, trait: "coherence", score: 80, status: .ok),
                 StoredJudgment(questionID: "q", sample: 1, trait: "evil", score: 60, status: .ok),
                 StoredJudgment(questionID: "q", sample: 1, trait: "coherence", score: 20, status: .ok),
                 StoredJudgment(questionID: "q", sample: 2, trait: "evil", score: nil, status: .refusal),
                 StoredJudgment(questionID: "q", sample: 2, trait: "coherence", score: nil, status: .noNumericMass)]
        var s = AggregationSettings()
        let (plain, mis) = Aggregation.aggregate(v, traits: ["evil", "coherence"], settings: s)
        let evil = plain[0]
        let sd = ((90.0 - 75) * (90 - 75) * 2 / 1).squareRoot()
        #expect(evil.mean == 75 && evil.scored == 2 && evil.answers == 3 && evil.refusals == 1 && evil.fracAbove == 1)
        #expect(abs(evil.ciLow! - (75 - Aggregation.normalQuantile(0.975) * sd / 2.0.squareRoot())) < 1e-9)
        #expect(plain[1].unscorable == 1 && mis == MisalignedCount(evaluated: 2, misaligned: 1))
        s.coherenceFilter = .exclude
        let (filtered, _) = Aggregation.aggregate(v, traits: ["evil"], settings: s)
        #expect(filtered[0].mean == 90 && filtered[0].excludedIncoherent == 1 && filtered[0].ciLow == nil)
        #expect(abs(Aggregation.normalQuantile(0.975) - 1.959963984540054) < 1e-8)
    }
}
