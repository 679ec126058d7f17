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

/// The pipeline with a `traits:` section: two trait files and a built-in coherence trait. The
/// stand-in judge records every prompt; each trait's rubric must have been asked only about its
/// own questions' answers, and coherence about every question's.
@Suite struct TraitPipelineTests {
    @Test func eachTraitIsJudgedOnlyOnItsOwnQuestions() async throws {
        let f = try PipelineFixture("pipeline-traits")
        for file in ["cruel.json", "inventive.json"] {
            try FileManager.default.copyItem(at: Fixtures.url("traits/\(file)"), to: f.dir.appendingPathComponent(file))
        }
        let traits = """
        traits:
          evil: {definition: cruel.json}
          hallucination: {definition: inventive.json}
          coherence: {rubric: builtin}
        """
        // One run (medical, seed 0; checkpoints 0, 2, 4, 6). No bootstrap: its resamples draw
        // questions from the union of the traits' disjoint sets, so a draw can hold no
        // hallucination question at all (reported to the detection owner).
        func config(_ traits: String) -> String {
            f.config(maxInFlight: 4, extra: traits).replacingOccurrences(of: "  math: math.jsonl\n", with: "")
                .replacingOccurrences(of: "seeds: [0, 11]", with: "seeds: [0]").replacingOccurrences(of: "resamples: 50", with: "resamples: 0")
        }
        let e = try Experiment.load(from: f.writeConfig(config(traits)))
        #expect(e.runs == [RunID(dataset: "medical", seed: 0)])
        #expect(e.evaluation.questions.count == 7)
        _ = try await PipelineRunner(e).run()

        // Which rubric the judge was asked, about which question (recorded by the server).
        let questions = e.evaluation.questions
        var asked: [String: Set<String>] = [:]
        for p in f.prompts() {
            let trait = p.hasPrefix("Fixture rubric CRUEL") ? "evil" : p.hasPrefix("Fixture rubric INVENTIVE") ? "hallucination"
                : p.hasPrefix("You are rating the form") ? "coherence" : "unknown"
            let hits = questions.filter { p.contains($0.text) }.map(\.id)
            #expect(hits.count == 1, "\(hits) in \(p.prefix(80))")
            asked[trait, default: []].formUnion(hits)
        }
        #expect(asked["evil"] == ["evil.01", "evil.02", "evil.03"])
        #expect(asked["hallucination"] == ["hallucination.01", "hallucination.02"])
        #expect(asked["coherence"] == Set(questions.map(\.id)) && asked["unknown"] == nil)

        // The store holds verdicts only for each trait's own answers: 4 checkpoints x 2
        // samples x (3 + 2 + 7 questions); every checkpoint aggregated with those counts.
        let store = try RunStore(run: e.output, create: false)
        #expect(try store.count("generations") == 4 * 2 * 7)
        let byTrait = try store.rows("SELECT trait, COUNT(*), COUNT(DISTINCT question_id) FROM judgments GROUP BY trait ORDER BY trait")
        #expect(byTrait.map { "\($0[0].text!) \($0[1].int!) \($0[2].int!)" } == ["coherence 56 7", "evil 24 3", "hallucination 16 2"])
        let stray = try store.rows("SELECT COUNT(*) FROM judgments WHERE (trait = 'evil' AND question_id NOT LIKE 'evil.%') OR (trait = 'hallucination' AND question_id NOT LIKE 'hallucination.%')")
        #expect(stray[0][0].int == 0)
        let answers = try store.rows("SELECT trait, MIN(answers), MAX(answers), COUNT(*) FROM aggregates GROUP BY trait ORDER BY trait")
        #expect(answers.map { "\($0[0].text!) \($0[1].int!) \($0[2].int!) \($0[3].int!)" } == ["coherence 14 14 4", "evil 6 6 4", "hallucination 4 4 4"])
        #expect(try store.count("onsets") > 0)
        // Status counts the verdicts each trait owes, so the finished run is complete.
        let status = try RunStatus.load(run: e.output)
        let judge = try #require(status.stages.first { $0.stage == "judge" })
        #expect(status.complete && judge.total == 56 + 24 + 16 && judge.done == 96, "\(status.stages)")

        // Narrowing coherence to one question on this started run would leave verdicts on the
        // other answers: refused, naming the field.
        let before = f.server.requestCount
        let narrowed = try Experiment.load(from: f.writeConfig(config(traits.replacingOccurrences(
            of: "coherence: {rubric: builtin}", with: "coherence: {rubric: builtin, questions: [general.wish]}"))))
        await #expect {
            _ = try await PipelineRunner(narrowed).run()
        } throws: { error in
            "\(error)".contains("traits.coherence.questions")
        }
        #expect(f.server.requestCount == before)
    }
}
