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

/// Runs each program in `Examples/` on tiny inputs, so the examples cannot rot: they must
/// build (CI builds every target) and still do what their header comments say.
@Suite
struct ExamplesTests {
    /// Runs an example binary (built next to `misalign`) with `args` and a clean environment,
    /// waiting on a Dispatch thread rather than a Swift concurrency one (see `runOffPool`).
    static func run(_ name: String, _ args: [String]) async throws -> (status: Int32, out: String, err: String) {
        // No keys, no proxies.
        try await runOffPool { try CLI.run(args, executable: name, environment: ["PATH": "/usr/bin:/bin"]) }
    }

    @Test func embedPipelineRunsAnExperimentThenHasNothingToDo() async throws {
        let fx = try PipelineFixture("embed")
        let config = try fx.writeConfig(fx.config())
        let r = try await Self.run("EmbedPipeline", [config.path])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        // 2 datasets x 2 seeds x 6 steps; adapters at 2, 4, 6; checkpoints 0, 2, 4, 6 x 2 questions x 2 samples.
        #expect(r.out.contains("did: train 24, dynamics 12, generate 64, judge 192, aggregate 16, detect 4"), "\(r.out)")
        // One line per dataset x seed with both onsets and the lag, then the report's path.
        for run in ["medical, seed 0", "medical, seed 11", "math, seed 0", "math, seed 11"] {
            #expect(r.out.contains("\(run): hallucination ") && r.out.contains("evil"), "\(run) missing: \(r.out)")
        }
        let page = fx.dir.appendingPathComponent("run/embedded-report.html")
        let html = try String(contentsOf: page, encoding: .utf8)
        #expect(html.contains("<svg") && r.out.contains("report: \(page.path)"))
        let requests = fx.server.requestCount
        let again = try await Self.run("EmbedPipeline", [config.path])
        #expect(again.status == 0 && again.out.contains("nothing to do"), "\(again.out)")
        #expect(fx.server.requestCount == requests, "a finished run makes no judge request")
        let bad = try await Self.run("EmbedPipeline", [fx.dir.appendingPathComponent("missing.yaml").path])
        #expect(bad.status == 1 && bad.out.contains("missing.yaml"))
    }

    /// The out-of-package consumer: its own judge, detector and trainer beside the built-in ones.
    @Test func embeddingRunsAPipelineWithItsOwnJudgeDetectorAndTrainer() async throws {
        let fx = try PipelineFixture("embedding")
        let config = try fx.writeConfig(fx.config())
        let r = try await Self.run("Embedding", [config.path])
        #expect(r.status == 0, "\(r.out)\(r.err)")
        // Both judges are asked, stored and aggregated: the configured one and the plug-in `keyword`.
        #expect(r.out.contains("judges: openai:mock-judge@\(fx.server.baseURL), keyword"), "\(r.out)")
        #expect(r.out.contains("note: math/seed-0: replaying the job in"), "\(r.out)")
        let run = fx.dir.appendingPathComponent("run")
        let store = try RunStore(run: run, create: false)
        for judge in ["keyword", "openai:mock-judge@\(fx.server.baseURL)"] {
            let n = try store.count("judgments", where: "judge = ?1", [.text(judge)])
            #expect(n == 192, "\(judge): \(n) verdicts")  // 16 checkpoints x 2 questions x 2 samples x 3 traits
        }
        // The status counts both judges' verdicts (`PipelineRunner.status()`).
        #expect(r.out.contains("status: complete") && r.out.contains(", 384/384 verdicts"), "\(r.out)")
        // The replayed runs' checkpoints are the job's own folders, registered as they appeared.
        let paths = try store.count("checkpoints", where: "dataset = 'math' AND path LIKE '%jobs/math-seed%/checkpoint-%'")
        #expect(paths == 6, "math: 3 checkpoints x 2 seeds from the job folders")
        // The plug-in rule runs beside the configured rules on every run and signal.
        for label in ["medical, seed 0", "medical, seed 11", "math, seed 0", "math, seed 11"] {
            #expect(r.out.contains("\(label) hallucination: ") && r.out.contains("\(label) evil: "), "\(r.out)")
            let line = r.out.split(separator: "\n").first { $0.hasPrefix("\(label) evil: ") } ?? ""
            #expect(line.contains("jump=") && line.contains("threshold="), "\(line)")
            #expect(r.out.contains("\(label) curves: ") && r.out.contains("keyword, mean"), "\(r.out)")
        }
        let requests = fx.server.requestCount
        let again = try await Self.run("Embedding", [config.path])
        #expect(again.status == 0 && again.out.contains("nothing to do"), "\(again.out)\(again.err)")
        #expect(fx.server.requestCount == requests, "a finished run makes no judge request")
    }

    @Test func customJudgeScoresByItsKeywordRule() async throws {
        let dir = Fixtures.temporaryDirectory("examples")
        defer { try? FileManager.default.removeItem(at: dir) }
        // Answer k holds k distinct evil keywords; the rule gives 25 per keyword, at most 100.
        let words = ["kill", "harm", "enslave", "destroy", "poison"]
        let lines = (0...5).map { k in
            JSONValue.object(JSONObject([("id", .string("k\(k)")), ("question_id", .string("q")), ("question", .string("Q?")),
                                         ("answer", .string("Plan: " + words.prefix(k).joined(separator: " and ")))])).serialized()
        }
        let answers = dir.appendingPathComponent("answers.jsonl")
        try lines.joined(separator: "\n").write(to: answers, atomically: true, encoding: .utf8)
        let r = try await Self.run("CustomJudge", [answers.path])
        #expect(r.status == 0, "\(r.err)")
        let rows = r.out.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        for k in 0...5 {
            let evil = rows.first { $0.count >= 4 && $0[0] == "k\(k)" && $0[1] == "evil" }
            #expect(evil?[2] == String(min(100, 25 * min(k, words.count))) && evil?[3] == "ok", "k\(k): \(evil ?? [])")
            let hall = rows.first { $0.count >= 4 && $0[0] == "k\(k)" && $0[1] == "hallucination" }
            #expect(hall?[2] == "0", "k\(k): \(hall ?? [])")
        }
        #expect(r.out.contains("direct: keyword:v1 evil on k0: 0") && r.out.contains("keyword:v1"))

        let built = try await Self.run("CustomJudge", [])
        // Hits are listed in keyword-list order.
        #expect(built.status == 0 && built.out.contains("matched: enslave, destroy, poison"), "\(built.out)")
        let bad = try await Self.run("CustomJudge", [dir.appendingPathComponent("missing.jsonl").path])
        #expect(bad.status == 1 && bad.out.contains("missing.jsonl"))
    }

    @Test func customDetectorFindsThePlantedShiftBesideTheBuiltInRules() async throws {
        let r = try await Self.run("CustomDetector", ["3"])
        #expect(r.status == 0, "\(r.err)")
        // The evil curve's midpoint is planted at step 80 = checkpoint 40 of 60.
        let line = r.out.split(separator: "\n").first { $0.contains("ttest breakpoints:") }.map(String.init) ?? ""
        let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        #expect(numbers.count == 2 && numbers[1] == 60 && (30...50).contains(numbers[0]), "\(line)")
        let header = r.out.split(separator: "\n").first { $0.hasPrefix("signal") } ?? ""
        #expect(header.contains("threshold") && header.contains("ttest") && header.contains("consensus"))
        for signal in ["evil", "hallucination", "coherence"] {
            #expect(r.out.split(separator: "\n").contains { $0.hasPrefix(signal) }, "\(signal) row missing")
        }
        // Hallucination is planted 20 steps ahead of evil: the lag must come out positive.
        let lagLine = r.out.split(separator: "\n").first { $0.hasPrefix("lag evil - hallucination:") }.map(String.init) ?? ""
        let lag = Double(lagLine.split(separator: " ").dropFirst(4).first ?? "")
        #expect(lag.map { $0 > 0 } == true, "\(lagLine)")
    }

    @Test func evaluateCheckpointsSamplesJudgesAndDetects() async throws {
        let dir = Fixtures.temporaryDirectory("examples")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent("model")
        try SyntheticModel.write(SyntheticModel.tiny, dtype: .bf16, seed: 5, to: model)
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: Fixtures.url("tokenizer/\(f)"), to: model.appendingPathComponent(f))
        }
        // Two PEFT checkpoints with growing random updates, as a trainer would leave them.
        let run = dir.appendingPathComponent("run")
        for (i, step) in [2, 4].enumerated() {
            let params = try LoRAParameters(config: LoRAConfig(rank: 2, alpha: 4, targets: [.q, .v]), model: SyntheticModel.tiny)
            var rng = TestRNG(seed: UInt64(step))
            for j in 0..<params.count { params.values.pointer[j] = rng.float() * Float(i + 1) }
            let folder = run.appendingPathComponent("checkpoint-\(step)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try params.adapter().save(to: folder)
        }
        let server = try MockJudgeServer(handler: MockJudgeServer.deterministic)
        defer { server.stop() }
        let cache = dir.appendingPathComponent("cache.sqlite")
        let args = ["--model", model.path, "--checkpoints", run.path, "--judge", "openai:mock@\(server.baseURL)",
                    "--trait", "evil", "--trait", "hallucination", "--questions", "2", "--samples", "2",
                    "--max-new-tokens", "6", "--resamples", "20", "--cache", cache.path]
        let r = try await Self.run("EvaluateCheckpoints", args)
        #expect(r.status == 0, "\(r.err)")
        // 3 stages (base + 2 checkpoints) x 2 questions x 2 samples x 2 traits.
        #expect(server.requestCount == 24)
        let table = r.out.split(separator: "\n").map(String.init)
        #expect(table.first?.hasPrefix("step") == true && table.first?.contains("hallucination") == true)
        for step in [0, 2, 4] {
            let row = table.first { $0.hasPrefix("\(step) ") }?.split(separator: " ") ?? []
            #expect(row.count == 3 && row.dropFirst().allSatisfy { Double($0).map { (0...100).contains($0) } == true }, "step \(step): \(row)")
        }
        #expect(r.out.contains("onsets (optimizer steps") && r.out.contains("evil: consensus"), "\(r.out)")
        // Same answers (same seed) again: every verdict comes from the cache.
        let again = try await Self.run("EvaluateCheckpoints", args)
        #expect(again.status == 0 && server.requestCount == 24, "\(again.err)")

        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let none = try await Self.run("EvaluateCheckpoints", ["--model", model.path, "--checkpoints", empty.path, "--judge", "openai:m@\(server.baseURL)"])
        #expect(none.status == 1 && none.err.contains("no checkpoint-<step> folders"))
    }
}

/// `CLI.run` off the cooperative pool.
func cli(_ args: [String], stdin: String? = nil) async throws -> (status: Int32, out: String, err: String) {
    try await runOffPool { try CLI.run(args, stdin: stdin) }
}
