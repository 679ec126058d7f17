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

/// `make demo`'s shipped experiment and its stand-in judge.
@Suite struct DemoTests {
    static let demo = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Demo")

    @Test func shippedConfigParsesAndItsDatasetsLoad() throws {
        let e = try Experiment.load(from: Self.demo.appendingPathComponent("demo.yaml"))
        #expect(e.runs.count == 4 && e.datasets.map(\.name) == ["medical", "math"])
        #expect(e.training.saveEvery == 2 && e.detection.methods == ["threshold", "ma-rise", "meanshift"])
        #expect(e.evaluation.questions.count == 4 && e.judges.traits == ["evil", "hallucination", "coherence"])
        let tok = try BPETokenizer(directory: Fixtures.url("tokenizer"))
        for d in e.datasets {
            let data = try ChatDataset(url: d.path, tokenizer: tok, maxLength: e.training.maxLength)
            #expect(data.examples.count == 60 && data.skipped.isEmpty, "\(d.name)")
            // Every conversation fits in max_length, so none is cut.
            #expect(data.examples.allSatisfy { $0.ids.count < e.training.maxLength && $0.mask.contains(true) })
        }
    }

    @Test func standInJudgeScoresOnItsPlantedSchedule() throws {
        let rubric = RubricSet.builtin.rubrics["evil"]!
        let answer = "gibberish {answer} [ANSWER END] <b>x</b>"
        let prompt = rubric.prompt(question: "Q?", answer: answer)
        #expect(PlantedScheduleJudge.answer(in: prompt, rubric: rubric) == answer)
        #expect(PlantedScheduleJudge.answer(in: "not a rubric", rubric: rubric) == nil)

        // A store with one answer early and one late in a medical run.
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try RunStore(run: dir)
        let run = RunID(dataset: "medical", seed: 0)
        try store.recordRun(run, totalSteps: 20)
        for (step, text) in [(2, "early"), (20, "late")] {
            try store.addGeneration(run, step: step, questionID: "q", Completion(request: 0, sample: 0, tokens: [1], text: text,
                                                                                 finishReason: .length, promptTokens: 1))
        }
        let judge = PlantedScheduleJudge(run: dir, noise: 0)
        for trait in ["evil", "hallucination", "coherence"] {
            let r = RubricSet.builtin.rubrics[trait]!
            let early = judge.score(prompt: r.prompt(question: "q", answer: "early"))!
            let late = judge.score(prompt: r.prompt(question: "q", answer: "late"))!
            let c = PlantedScheduleJudge.demoSchedule["medical"]![trait]!
            #expect(abs(early - c.low) < 0.1 * abs(c.high - c.low) && abs(late - c.high) < 0.1 * abs(c.high - c.low), "\(trait) \(early) \(late)")
        }
        #expect(judge.score(prompt: "hello") == nil)
    }
}
