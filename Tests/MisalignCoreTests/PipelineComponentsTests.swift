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

/// `PipelineComponents`: a plug-in judge standing in for the configured ones, a plug-in rule
/// and checkpoint resolver, and the refusals that keep names unambiguous. (The plug-in trainer
/// and judges beside the configured ones run in `ExamplesTests`, through Examples/Embedding.)
@Suite struct PipelineComponentsTests {
    /// Scores each answer by its length: deterministic, and no HTTP.
    struct LengthJudge: Judge {
        var id: String { "length" }
        var cacheIdentity: String { "length v1" }
        func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict {
            Verdict(judge: id, trait: item.rubric.name, score: Double(item.answer.utf8.count % 101), status: .ok, rubricHash: item.rubric.sha256)
        }
    }

    /// The first checkpoint index where the series is above its first value.
    struct AboveStart: OnsetRule {
        var name: String { "above-start" }
        func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? {
            x.indices.first { i in direction == .up ? x[i] > x[0] : x[i] < x[0] }
        }
    }

    final class Calls: @unchecked Sendable {
        private let lock = NSLock()
        private var steps: [Int] = []
        func add(_ s: Int) { lock.withLock { steps.append(s) } }
        var all: [Int] { lock.withLock { steps.sorted() } }
    }

    static func experiment(_ f: PipelineFixture) throws -> Experiment {
        let text = f.config().replacingOccurrences(of: "  math: math.jsonl\n", with: "").replacingOccurrences(of: "seeds: [0, 11]", with: "seeds: [0]")
        return try Experiment.load(from: f.writeConfig(text))
    }

    @Test func aPluginJudgeRuleAndCheckpointResolverRunInPlaceOfTheConfiguredParts() async throws {
        let f = try PipelineFixture("components")
        var e = try Self.experiment(f)
        e.detection.judge = "length"
        let calls = Calls()
        let components = PipelineComponents(judges: [LengthJudge()], configuredJudges: false, onsetRules: [AboveStart()],
                                            checkpoints: { _, step, url in calls.add(step); return try CheckpointDirectory(directory: url) })
        let runner = PipelineRunner(e, components: components)
        #expect(runner.judgeNames == ["length"])
        _ = try await runner.run()
        #expect(f.server.requestCount == 0, "the configured judge is never asked")
        #expect(calls.all == [2, 4, 6], "generation loads each trained checkpoint through the resolver")
        let store = try RunStore(run: e.output, create: false)
        // 4 checkpoints x 2 questions x 2 samples x 3 traits, all under the plug-in judge's id.
        #expect(try store.count("judgments") == 48 && store.count("judgments", where: "judge = 'length'") == 48)
        // The plug-in rule is one of the onset methods, beside the configured threshold and meanshift.
        let methods = Set(try store.rows("SELECT DISTINCT method FROM onsets WHERE judge = 'length'").compactMap { $0[0].text })
        #expect(methods.isSuperset(of: ["above-start", "threshold", "meanshift"]), "\(methods)")
        // Its onset is what the rule says on the stored curve.
        let curve = try store.rows("SELECT mean FROM aggregates WHERE judge = 'length' AND trait = 'evil' ORDER BY step").compactMap { $0[0].double }
        let expected = try AboveStart().onset(curve, direction: .up, series: "evil").map { Double([0, 2, 4, 6][$0]) }
        let stored = try store.rows("SELECT step FROM onsets WHERE judge = 'length' AND signal = 'evil' AND method = 'above-start'").first?[0].double
        #expect(stored == expected, "curve \(curve)")
        // A second call has nothing to do, plug-ins included.
        let again = try await PipelineRunner(e, components: components).run()
        #expect(again.nothingToDo)
    }

    @Test func namesMustBeUnambiguousAndSomeJudgeMustBeLeft() async throws {
        let f = try PipelineFixture("components-refused")
        let e = try Self.experiment(f)
        let configured = e.judges.names[0]
        struct Named: Judge {
            let id: String
            var cacheIdentity: String { id }
            func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict {
                Verdict(judge: id, trait: item.rubric.name, score: 1, status: .ok, rubricHash: item.rubric.sha256)
            }
        }
        struct Threshold: OnsetRule {
            var name: String { "threshold" }
            func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? { nil }
        }
        let cases: [(PipelineComponents, String, String)] = [
            (PipelineComponents(judges: [Named(id: configured)]), "judges.models", "two judges are named"),
            (PipelineComponents(configuredJudges: false), "judges.models", "no judge left"),
            (PipelineComponents(judges: [Named(id: "mine")], configuredJudges: false), "detection.judge", "is none of the pipeline's judges (mine)"),
            (PipelineComponents(onsetRules: [Threshold()]), "detection.methods", "two onset rules are named `threshold`"),
        ]
        for (components, key, words) in cases {
            do {
                _ = try await PipelineRunner(e, components: components).run()
                Issue.record("expected a refusal naming \(key)")
            } catch let PipelineError.config(_, k, _, reason) {
                #expect(k == key && reason.contains(words), "\(k): \(reason)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: e.output.appendingPathComponent("store.sqlite").path), "refused before any work")
    }
}
