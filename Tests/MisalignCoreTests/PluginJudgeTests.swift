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

/// Plug-in judges in the status (`PipelineRunner.status()`, `RunStatus.load(run:judges:)`), and
/// configured judges of a custom scheme built by an embedding program's factory
/// (`PipelineComponents.judgeFactories`).
@Suite struct PluginJudgeTests {
    /// Scores an answer by its length times `factor`, counting its calls.
    struct ScaledLengthJudge: Judge {
        let factor: Int
        let calls: CheckpointWeightsTests.Counter
        var id: String { "scaled-length" }
        var cacheIdentity: String { "scaled-length v1 x\(factor)" }
        func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict {
            calls.add()
            return Verdict(judge: id, trait: item.rubric.name, score: Double(item.answer.utf8.count * factor % 101), status: .ok,
                           rubricHash: item.rubric.sha256)
        }
    }

    static func stage(_ s: RunStatus, _ name: String) -> StageStatus? { s.stages.first { $0.stage == name } }

    @Test func statusCountsThePluginJudgesThePipelineAsks() async throws {
        let f = try PipelineFixture("status-plugin")
        let e = try PipelineComponentsTests.experiment(f)
        let runner = PipelineRunner(e, components: PipelineComponents(judges: [PipelineComponentsTests.LengthJudge()]))
        _ = try await runner.run()
        let configured = e.judges.names[0]
        #expect(runner.judgeNames == [configured, "length"])
        // 4 checkpoints x 2 questions x 2 samples x 3 traits per judge.
        let store = try RunStore(run: e.output, create: false)
        #expect(try store.verdictCount(judge: "length") == 48 && store.verdictCount(judge: configured) == 48)

        let status = try runner.status()
        #expect(Self.stage(status, "judge")?.done == 96 && Self.stage(status, "judge")?.total == 96, "\(status.stages)")
        // Two judges and their mean per checkpoint.
        #expect(Self.stage(status, "aggregate")?.done == 12 && Self.stage(status, "aggregate")?.total == 12)
        #expect(status.complete && status.state == "complete", "\(status.stages)")
        #expect(try RunStatus.load(run: e.output, judges: runner.judgeNames).stages == status.stages)

        // By default (`misalign status`) the configured judges are counted; the plug-in
        // judge's verdicts stay in the store but are not inferred from it.
        let configuredOnly = try RunStatus.load(run: e.output)
        #expect(Self.stage(configuredOnly, "judge")?.done == 48 && Self.stage(configuredOnly, "judge")?.total == 48)
    }

    /// `judges.models: [mine:x3]` is built by the components' factory for `mine`, stored under
    /// `mine:x3`, cached and resumed like a built-in judge.
    @Test func aConfiguredJudgeOfACustomSchemeIsBuiltByTheRegisteredFactory() async throws {
        let f = try PipelineFixture("custom-scheme")
        let text = f.config().replacingOccurrences(of: "  math: math.jsonl\n", with: "").replacingOccurrences(of: "seeds: [0, 11]", with: "seeds: [0]")
            .replacingOccurrences(of: "models: [\"openai:mock-judge@\(f.server.baseURL)\"]", with: "models: [\"openai:mock-judge@\(f.server.baseURL)\", \"mine:x3\"]")
        let e = try Experiment.load(from: f.writeConfig(text))
        #expect(e.judges.names.last == "mine:x3")
        let calls = CheckpointWeightsTests.Counter(), built = CheckpointWeightsTests.Counter()
        let components = PipelineComponents(judgeFactories: ["mine": { spec in
            built.add()
            guard spec.kind == .custom("mine"), spec.model.hasPrefix("x"), let factor = Int(spec.model.dropFirst()) else {
                throw JudgeError.invalidInput("mine: expected xN, got \(spec.model)")
            }
            return ScaledLengthJudge(factor: factor, calls: calls)
        }])
        let runner = PipelineRunner(e, components: components)
        #expect(runner.judgeNames == [e.judges.names[0], "mine:x3"])
        _ = try await runner.run()
        #expect(built.value == 1 && calls.value > 0)
        let store = try RunStore(run: e.output)
        let rows = try store.rows("SELECT g.text, j.score FROM judgments j JOIN generations g USING (dataset, seed, step, question_id, sample) WHERE j.judge = 'mine:x3'")
        #expect(rows.count == 48)
        for row in rows { #expect(row[1].double == Double(row[0].text!.utf8.count * 3 % 101)) }
        // Its verdicts are aggregated (and averaged into `mean`) like the configured judge's.
        #expect(try store.count("aggregates", where: "judge = 'mine:x3'") == 4 * 3)
        #expect(try store.count("aggregates", where: "judge = 'mean'") == 4 * 3)

        // Resumed: verdicts lost from the store are asked again, from the verdict cache.
        let asked = calls.value
        try store.db.run("DELETE FROM judgments WHERE judge = 'mine:x3' AND step = 6", [])
        #expect(try store.verdictCount(judge: "mine:x3") == 36)
        let again = try await PipelineRunner(e, components: components).run()
        #expect(again.done["judge"] == 12 && calls.value == asked, "from the cache, no new call")
        #expect(try store.verdictCount(judge: "mine:x3") == 48)
        #expect(try await PipelineRunner(e, components: components).run().nothingToDo)
    }

    @Test func aCustomSchemeWithoutAFactoryIsRefusedNamingTheSpecAndTheFix() async throws {
        let f = try PipelineFixture("custom-scheme-refused")
        let text = f.config().replacingOccurrences(of: "  math: math.jsonl\n", with: "").replacingOccurrences(of: "seeds: [0, 11]", with: "seeds: [0]")
            .replacingOccurrences(of: "models: [\"openai:mock-judge@\(f.server.baseURL)\"]", with: "models: [\"openai:mock-judge@\(f.server.baseURL)\", \"mine:x3\"]")
        let config = try f.writeConfig(text)
        let e = try Experiment.load(from: config)
        let mine: CustomJudgeFactory = { _ in PipelineComponentsTests.LengthJudge() }
        let cases: [(PipelineComponents, String)] = [
            (PipelineComponents(), "judge `mine:x3`: `mine` is not a built-in judge API (openai, anthropic, local)"),
            (PipelineComponents(judgeFactories: ["other": mine]), "PipelineComponents.judgeFactories[\"mine\"]"),
            (PipelineComponents(judgeFactories: ["mine": mine, "openai": mine]), "judge factory for `openai`, which is a built-in judge API"),
        ]
        for (components, words) in cases {
            do {
                _ = try await PipelineRunner(e, components: components).run()
                Issue.record("expected a refusal: \(words)")
            } catch let PipelineError.config(file, key, _, reason) {
                #expect(file == config.path && key == "judges.models" && reason.contains(words), "\(key): \(reason)")
            }
        }
        // Off, the configured judges need no factory.
        var off = e
        off.detection.judge = "length"
        #expect(throws: Never.self) {
            try PipelineRunner(off, components: PipelineComponents(judges: [PipelineComponentsTests.LengthJudge()], configuredJudges: false)).checkComponents()
        }
        #expect(!FileManager.default.fileExists(atPath: e.output.appendingPathComponent("store.sqlite").path), "refused before any work")

        // The CLI has no factories: `misalign run` says the same.
        let r = try runMisalign(["run", config.path, "--quiet"])
        #expect(r.status != 0 && !r.signaled)
        #expect(r.err.contains("`mine` is not a built-in judge API") && r.err.contains("PipelineComponents.judgeFactories[\"mine\"]"), "\(r.err)")
    }

    @Test func judgeSpecsOfCustomSchemesParseAndBuiltInOnesKeepTheirErrors() throws {
        let custom = try JudgeSpec(parsing: "mine:some/model@http://host:1/v1")
        #expect(custom.kind == .custom("mine") && custom.model == "some/model@http://host:1/v1" && custom.baseURL == nil)
        #expect(custom.canonicalName == "mine:some/model@http://host:1/v1" && custom.kind.rawValue == "mine")
        #expect(JudgeSpec.Kind(rawValue: "mine") == nil && JudgeSpec.Kind(rawValue: "openai") == .openai)
        #expect(try JudgeSpec(parsing: "openai:gpt@http://h/v1") == JudgeSpec(kind: .openai, model: "gpt", baseURL: "http://h/v1"))
        for (text, words) in [("mine:", "nothing after `mine:`"), ("openai:", "empty model name"), ("gpt-4o", "expected openai:MODEL[@URL]"),
                              ("9x:y", "expected openai:MODEL[@URL]"), (":y", "expected openai:MODEL[@URL]")] {
            #expect { _ = try JudgeSpec(parsing: text) } throws: { error in
                guard case JudgeError.invalidInput(let m) = error else { return false }
                return m.contains("judge `\(text)`") && m.contains(words)
            }
        }
        // The factory builds a custom spec only through a registered factory.
        let factory = JudgeFactory(environment: [:])
        #expect(throws: JudgeError.invalidInput(custom.unregisteredMessage)) { _ = try factory.make(custom) }
        factory.custom["mine"] = { spec in
            guard spec.model.hasPrefix("some/") else { throw CocoaError(.fileNoSuchFile) }
            return PipelineComponentsTests.LengthJudge()
        }
        #expect(try factory.make(custom).id == "length")
        #expect { _ = try factory.make(JudgeSpec(parsing: "mine:other")) } throws: { error in
            guard case JudgeError.invalidInput(let m) = error else { return false }
            return m.hasPrefix("judge `mine:other`: its factory failed: ")
        }
        // A respelt custom judge is another judge, and the change says so.
        #expect(try JudgeSpec(parsing: "mine:b").changes(from: JudgeSpec(parsing: "mine:a")) == ["model a -> b"])
        #expect(try JudgeSpec(parsing: "mine:a").changes(from: JudgeSpec(parsing: "openai:a")) == ["API openai -> mine"])
    }
}
