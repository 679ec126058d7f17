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

/// The whole pipeline on a tiny model, in process: 2 datasets x 2 seeds, a checkpoint every
/// 2 steps, a local judge, detection; then a second run that does nothing.
@Suite struct PipelineEndToEndTests {
    @Test func runsEveryStageThenHasNothingToDo() async throws {
        let f = try PipelineFixture("pipeline-e2e")
        let e = try Experiment.load(from: f.writeConfig(f.config(maxInFlight: 8)))
        let events = EventLog()
        let summary = try await PipelineRunner(e) { events.add($0) }.run()

        let store = try RunStore(run: e.output, create: false)
        // 4 runs x checkpoints 0 (base), 2, 4, 6.
        #expect(try store.count("checkpoints") == 16)
        #expect(try store.count("metrics") == 4 * 6)
        #expect(try store.count("generations") == 16 * 2 * 2)
        #expect(try store.count("judgments") == 64 * 3)
        #expect(try store.count("aggregates") == 16 * 3)
        #expect(try store.count("misaligned") == 16)
        #expect(try store.count("lags") == 4)
        #expect(try store.count("lag_summary") == 2)
        // Every rule and the consensus, per signal, per run.
        #expect(try store.count("onsets") == 4 * 3 * 3)
        #expect(summary.done["train"] == 24 && summary.done["generate"] == 64 && summary.done["judge"] == 192)

        // The base model's answers are the same for both datasets of a seed, so the judge is
        // asked once per distinct (rubric, question, answer): no request repeats.
        let prompts = f.prompts()
        #expect(Set(prompts).count == prompts.count, "the judge saw a repeated request")
        let distinct = try store.rows("SELECT COUNT(*) FROM (SELECT DISTINCT g.question_id, g.text, j.trait FROM generations g JOIN judgments j USING (dataset, seed, step, question_id, sample))")
        #expect(prompts.count == distinct[0][0].int)

        // Aggregates agree with a direct computation from the verdicts.
        let rows = try store.rows("SELECT score FROM judgments WHERE dataset = 'math' AND seed = 11 AND step = 4 AND trait = 'evil' AND status = 'ok'")
        let scores = rows.compactMap { $0[0].double }
        let mean = try store.rows("SELECT mean, scored FROM aggregates WHERE dataset = 'math' AND seed = 11 AND step = 4 AND trait = 'evil'")[0]
        #expect(abs((mean[0].double ?? -1) - scores.reduce(0, +) / Double(scores.count)) < 1e-9 && mean[1].int == scores.count)

        // Exports: CSV and JSONL per table, readable back.
        let exports = e.output.appendingPathComponent("exports")
        let csv = try String(contentsOf: exports.appendingPathComponent("aggregates.csv"), encoding: .utf8).split(separator: "\n")
        #expect(csv.first?.hasPrefix("dataset,seed,step,judge,trait,answers,scored,mean") == true && csv.count == 1 + 48)
        let jsonl = try String(contentsOf: exports.appendingPathComponent("generations.jsonl"), encoding: .utf8).split(separator: "\n")
        let first = try JSONValue.parse(String(jsonl[0]))
        #expect(jsonl.count == 64 && first["text"]?.stringValue != nil)

        let overhead = summary.wallSeconds - summary.workSeconds
        print(String(format: "pipeline overhead: %.3fs of %.3fs wall (training, generation and judge HTTP: %.3fs); per stage: ",
                     overhead, summary.wallSeconds, summary.workSeconds)
              + PipelineRunner.stages.map { String(format: "%@ %.3fs", $0, summary.seconds[$0] ?? 0) }.joined(separator: ", "))

        let before = f.server.requestCount
        let again = try await PipelineRunner(e).run()
        #expect(again.nothingToDo && f.server.requestCount == before)

        let status = try RunStatus.load(run: e.output)
        #expect(status.complete, "\(status.stages)")
        let judge = status.stages.first { $0.stage == "judge" }!
        // Pricing: 120 input and 1 output token per fresh call.
        let expected = Double(prompts.count) * (120 * 0.4 + 1 * 1.6) / 1e6
        #expect(abs((judge.costSpent ?? 0) - expected) < 1e-12)
    }
}

final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var events: [PipelineEvent] = []
    func add(_ e: PipelineEvent) { lock.lock(); events.append(e); lock.unlock() }
}

/// Checkpoints trained elsewhere (HF Trainer layout: checkpoint-N/ with only the adapter)
/// are evaluated without training, and give the same answers as the same adapters trained here.
@Suite struct PipelineExternalTests {
    @Test func externalCheckpointsAreEvaluatedLikeTrainedOnes() async throws {
        let f = try PipelineFixture("pipeline-external")
        let trained = try Experiment.load(from: f.writeConfig(f.config(extra: "seeds: [0]").replacingOccurrences(of: "seeds: [0, 11]\n", with: "")))
        try await PipelineRunner(trained).run()
        // Copy one run's checkpoints as a bare PEFT layout.
        let peft = f.dir.appendingPathComponent("peft")
        try FileManager.default.createDirectory(at: peft, withIntermediateDirectories: true)
        for ck in try CheckpointDirectory.list(in: PipelineRunner.checkpointFolder(trained.output, RunID(dataset: "medical", seed: 0))) {
            let to = peft.appendingPathComponent("checkpoint-\(ck.step)")
            try FileManager.default.createDirectory(at: to, withIntermediateDirectories: true)
            for file in ["adapter_model.safetensors", "adapter_config.json"] {
                try FileManager.default.copyItem(at: ck.directory.appendingPathComponent(file), to: to.appendingPathComponent(file))
            }
        }
        let text = f.config(output: "external").replacingOccurrences(of: "datasets:\n  medical: medical.jsonl\n  math: math.jsonl\nseeds: [0, 11]\n",
                                                                     with: "external_checkpoints:\n  - {dataset: medical, seed: 0, path: peft}\n")
        let e = try Experiment.load(from: f.writeConfig(text, name: "external.yaml"))
        let summary = try await PipelineRunner(e).run()
        #expect(summary.done["train"] == 0 && summary.done["generate"] == 16)
        let q = "SELECT step, question_id, sample, text FROM generations WHERE dataset = 'medical' AND seed = 0 ORDER BY step, question_id, sample"
        let a = try RunStore(run: e.output, create: false).rows(q), b = try RunStore(run: trained.output, create: false).rows(q)
        #expect(a == b && a.count == 16)
        #expect(try RunStore(run: e.output, create: false).count("lags") == 1)
    }
}
