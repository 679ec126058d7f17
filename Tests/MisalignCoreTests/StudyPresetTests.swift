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

/// `misalign init --preset study`: the study's protocol as a config, and that config run end to
/// end (scaled down only where a tiny model and six conversations demand it).
@Suite struct StudyPresetTests {
    /// Trait files in persona_vectors' format, where the preset expects them.
    func writeTraitFiles(into dir: URL) throws {
        let traits = dir.appendingPathComponent("persona_vectors/data_generation/trait_data_eval")
        try FileManager.default.createDirectory(at: traits, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Fixtures.url("traits/cruel.json"), to: traits.appendingPathComponent("evil.json"))
        try FileManager.default.copyItem(at: Fixtures.url("traits/inventive.json"), to: traits.appendingPathComponent("hallucinating.json"))
    }

    @Test func thePresetIsTheStudysProtocol() throws {
        let dir = Fixtures.temporaryDirectory("study-preset-parse")
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeTraitFiles(into: dir)
        let config = dir.appendingPathComponent("study.yaml")
        let r = try CLI.run(["init", config.path, "--preset", "study"])
        #expect(r.status == 0 && r.out.contains("the dataset and trait file paths"), "\(r.err)")
        let e = try Experiment.load(from: config)
        let t = e.training
        #expect(t.lora.rank == 32 && t.lora.alpha == 64 && t.lora.useRSLoRA && t.lora.dropout == 0)
        #expect(Set(t.lora.targets) == Set(LoRAModule.allCases) && t.lora.layers == nil)
        #expect(t.learningRate == 1e-5 && t.schedule == .linear && t.warmupSteps == 5 && t.weightDecay == 0.01 && t.maxGradNorm == 1)
        #expect(t.batchSize == 2 && t.gradientAccumulation == 8 && t.epochs == 1 && t.maxSteps == nil)
        #expect(t.saveEvery == 2 && t.maxLength == 2048 && t.holdout == 0.1)
        #expect(e.seeds == [0, 11, 22, 33])
        let levels = ["normal", "misaligned_1", "misaligned_2"]
        #expect(e.datasets.map(\.name) == ["mistake_medical", "mistake_math"].flatMap { g in levels.map { "\(g).\($0)" } })
        for g in ["mistake_medical", "mistake_math"] {
            #expect(e.controls["\(g).misaligned_1"] == "\(g).normal" && e.controls["\(g).misaligned_2"] == "\(g).normal")
        }
        #expect(e.runs.count == 24)
        #expect(e.judges.traits == ["evil", "hallucination", "coherence"])
        #expect(e.judges.questionIDs(for: "evil") == ["evil.01", "evil.02", "evil.03"])
        #expect(e.judges.questionIDs(for: "hallucination") == ["hallucination.01", "hallucination.02"])
        #expect(e.judges.questionIDs(for: "coherence") == nil)
        #expect(e.evaluation.samples == 20 && e.evaluation.maxNewTokens == 1000 && e.evaluation.sampling.temperature == 1)
        #expect(!e.evaluation.includeBase && e.evaluation.seed == 0)
        #expect(e.judges.names == ["openai:gpt-4.1-mini-2025-04-14", "openai:gemma-2-9b-it@http://127.0.0.1:8001/v1"])
        #expect(e.judges.seed == 0 && e.judges.numbers == .auto && e.judges.minNumericMass == 0.25)
        #expect(e.detection.preset == .study && e.detection.judge == "mean" && e.detection.resamples == 2000)
        #expect(try e.detection.rules().map(\.name) == ["threshold", "ma-rise", "meanshift"])
        #expect(e.detection.lead == "hallucination" && e.detection.lag == "evil")

        let bad = try CLI.run(["init", dir.appendingPathComponent("x.yaml").path, "--preset", "paper"])
        #expect(bad.status == 2 && bad.err.contains("--preset <preset>") && bad.err.contains("'default' and 'study'"), "\(bad.err)")
        let again = try CLI.run(["init", config.path, "--preset", "study"])
        #expect(again.status != 0 && again.err.contains("exists"))
    }

    /// The preset through `misalign run` and `misalign report` on the tiny model with two
    /// stand-in judges. Changed from the preset: the model, the data (one level and its
    /// control, six conversations each), one seed, 8 steps of 2 x 1, 2 samples of 6 tokens,
    /// the judges' addresses and 50 resamples. Everything else is the preset's.
    @Test func thePresetRunsEndToEndOnTheTinyModel() throws {
        let f = try PipelineFixture("study-preset")
        let second = try MockJudgeServer { req, _ in
            // Another judge: its own deterministic scores.
            .respond(status: 200, headers: [], body: PipelineFixture.judgeBody(for: "second judge " + req.prompt))
        }
        defer { second.stop() }
        try writeTraitFiles(into: f.dir)
        var text = Experiment.studyYAML
        func replace(_ a: String, _ b: String) {
            #expect(text.contains(a), "the preset no longer has \(a)")
            text = text.replacingOccurrences(of: a, with: b)
        }
        replace("model: ~/models/Qwen2.5-7B-Instruct", "model: model")
        replace("output: runs/study", "output: run")
        let start = text.range(of: "datasets:\n")!, end = text.range(of: "seeds: [0, 11, 22, 33]")!
        text.replaceSubrange(start.lowerBound..<end.upperBound, with: """
            datasets:
              medical:
                misaligned_2: medical.jsonl
                normal: math.jsonl
                control: normal
            seeds: [0]
            """)
        replace("  grad_accum: 8\n", "  grad_accum: 1\n")
        replace("  epochs: 1\n", "  epochs: 4\n  max_steps: 8\n")
        replace("  samples: 20 ", "  samples: 2 ")
        replace("  max_new_tokens: 1000\n", "  max_new_tokens: 6\n")
        replace("openai:gpt-4.1-mini-2025-04-14", "openai:mock-judge@\(f.server.baseURL)")
        replace("openai:gemma-2-9b-it@http://127.0.0.1:8001/v1", "openai:second-judge@\(second.baseURL)")
        replace("  resamples: 2000 ", "  resamples: 50 ")
        // The stand-ins hash the prompt, so they would fail the preset's calibration gate.
        replace("  calibration: require ", "  calibration_exempt: {\"openai:mock-judge@\(f.server.baseURL)\": \"hash stand-in\", "
                + "\"openai:second-judge@\(second.baseURL)\": \"hash stand-in\"}\n  calibration: require ")
        let config = try f.writeConfig(text)
        let r = try runMisalign(["run", config.path, "--quiet"])
        #expect(r.status == 0, "\(r.err)")

        let store = try RunStore(run: f.dir.appendingPathComponent("run"), create: false)
        func rows(_ sql: String) throws -> [[String]] { try store.rows(sql).map { $0.map(\.description) } }
        // Each trait was judged only on its own questions, coherence on all; by both judges.
        for (trait, prefix) in [("evil", "evil."), ("hallucination", "hallucination.")] {
            let qs = Set(try rows("SELECT DISTINCT question_id FROM judgments WHERE trait = '\(trait)'").map { $0[0] })
            #expect(!qs.isEmpty && qs.allSatisfy { $0.hasPrefix(prefix) }, "\(trait): \(qs)")
        }
        let coherence = Set(try rows("SELECT DISTINCT question_id FROM judgments WHERE trait = 'coherence'").map { $0[0] })
        #expect(coherence == ["evil.01", "evil.02", "evil.03", "hallucination.01", "hallucination.02"])
        #expect(Set(try rows("SELECT DISTINCT judge FROM judgments").map { $0[0] }).count == 2)
        // No base model (the study's curves start at the first checkpoint); 4 checkpoints a run.
        #expect(try rows("SELECT DISTINCT step FROM generations ORDER BY step").map { $0[0] } == ["2", "4", "6", "8"])
        // The judges' mean is aggregated, and detected with the study's three rules.
        #expect(try rows("SELECT COUNT(*) FROM aggregates WHERE judge = 'mean'")[0][0] == "\(2 * 4 * 3)")
        let methods = Set(try rows("SELECT DISTINCT method FROM onsets WHERE judge = 'mean'").map { $0[0] })
        #expect(methods == ["threshold", "ma-rise", "meanshift", "consensus"], "\(methods)")
        #expect(try rows("SELECT COUNT(*) FROM lags WHERE judge = 'mean'")[0][0] == "2")
        // The held-out loss at every checkpoint of both runs.
        #expect(try rows("SELECT COUNT(*) FROM heldout_loss")[0][0] == "8")
        let exported = try String(contentsOf: f.dir.appendingPathComponent("run/exports/heldout_loss.csv"), encoding: .utf8)
        #expect(exported.split(separator: "\n").count == 1 + 8 && exported.hasPrefix("dataset,seed,step,"))

        let report = try runMisalign(["report", f.dir.appendingPathComponent("run").path])
        #expect(report.status == 0, "\(report.err)")
        let page = try String(contentsOfFile: report.out.trimmingCharacters(in: .whitespacesAndNewlines), encoding: .utf8)
        #expect(ReportFixtures.section(page, "controls")?.contains("medical.misaligned_2") == true)
        #expect(ReportFixtures.section(page, "training")?.contains("held-out") == true)
        #expect(ReportFixtures.section(page, "agreement")?.contains("second-judge") == true)
        // The trait files' rubrics are known versions in the reproducibility section.
        let repro = try #require(ReportFixtures.section(page, "reproducibility"))
        #expect(repro.contains("evil") && !repro.contains("not a known version"), "\(repro)")
    }
}
