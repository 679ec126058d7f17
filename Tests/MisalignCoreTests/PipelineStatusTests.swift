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

/// What `misalign status` says about runs that ended without a result.
@Suite struct PipelineStatusTests {
    /// Every verdict `no_numeric_mass`: detection cannot find an onset now or ever, so the
    /// run is done with a failure that status names, not "in progress" forever.
    @Test func allUnscorableVerdictsAreDoneWithAFailure() throws {
        let f = try PipelineFixture("pipeline-unscorable")
        let config = f.config().replacingOccurrences(of: "  math: math.jsonl\n", with: "").replacingOccurrences(of: "seeds: [0, 11]", with: "seeds: [0]")
        let e = try Experiment.load(from: f.writeConfig(config))
        let runner = PipelineRunner(e)
        try runner.prepare()
        defer { runner.lock?.release() }
        let store = runner.store!
        let r = RunID(dataset: "medical", seed: 0)
        let judge = e.judges.names[0]
        try store.transaction {
            try store.recordRun(r, totalSteps: 2)
            for step in [1, 2] { try store.db.run("INSERT INTO metrics (dataset, seed, step) VALUES ('medical', 0, ?1)", [.int(Int64(step))]) }
            for step in [0, 2] {
                try store.addCheckpoint(r, step: step, path: step == 0 ? "" : "checkpoints/medical-seed0/checkpoint-2")
                for q in e.evaluation.questions {
                    for sample in 0..<e.evaluation.samples {
                        let g = StoredGeneration(run: r, step: step, questionID: q.id, sample: sample, text: "answer")
                        try store.addGeneration(r, step: step, questionID: q.id,
                                                Completion(request: 0, sample: sample, tokens: [1], text: "answer", finishReason: .stop, promptTokens: 1))
                        for t in e.judges.traits {
                            try store.addJudgment(g, judge: judge, Verdict(judge: judge, trait: t, score: nil, status: .noNumericMass,
                                                                           detail: "numeric mass 0.010 below 0.25", rubricHash: "h"), cached: false)
                        }
                    }
                }
            }
            try store.markTrained(r)
        }
        #expect(try runner.dynamicsStage() == 0, "no adapter on disk: the units finish with nothing computed")
        #expect(try runner.aggregateStage() == 2)
        #expect(try runner.detectStage() == 1)
        #expect(try runner.detectStage() == 0, "nothing left to do")
        let status = try RunStatus.load(run: e.output)
        #expect(status.complete && status.state == "complete with 1 failure", "\(status.stages)")
        #expect(status.failures == ["detect medical/seed-0/\(judge): no scored verdicts for evil, hallucination, coherence (every verdict unscorable); no onsets"],
                "\(status.failures)")
    }
}
