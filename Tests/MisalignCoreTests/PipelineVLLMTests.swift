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

/// `generation: {backend: vllm}` end to end against the stand-in server: the tiny model is
/// trained here, every checkpoint's adapter is loaded on the server once under a name unique
/// to its run, each answer comes from the right adapter, and a killed run resumes without
/// asking the server again for an answer it stored.
@Suite(.serialized) struct PipelineVLLMTests {
    static func vllm(_ server: MockCompletionServer, extra: String = "") -> String {
        "generation: {backend: vllm, url: \"\(server.baseURL)\", served_model: qwen-base, max_in_flight: 4\(extra)}"
    }

    /// Checks every stored answer of `run` against the adapter that should have written it and
    /// returns the adapter names expected to have been loaded.
    static func checkAnswers(_ run: URL, prefix: String) throws -> Set<String> {
        let store = try RunStore(run: run, create: false)
        var names = Set<String>()
        for row in try store.rows("SELECT dataset, seed, step, text FROM generations") {
            let step = row[2].int!
            let name = step == 0 ? "qwen-base" : "\(prefix)-\(row[0].text!)-s\(row[1].int!)-step-\(step)"
            if step > 0 { names.insert(name) }
            #expect(row[3].text!.hasPrefix("[\(name)]"), "step \(step) of \(row[0])/\(row[1]) answered by \(row[3])")
        }
        return names
    }

    /// Completion requests sent more often than their units need: an adapter's once, the base
    /// model's once per dataset (runs with the same seed ask it the same thing at step 0).
    static func repeated(_ bodies: [JSONValue], datasets: Int = 2) -> [String] {
        var counts: [String: Int] = [:]
        for b in bodies { counts[b.serialized(), default: 0] += 1 }
        return counts.filter { body, n in n > (body.contains(#""model":"qwen-base""#) ? datasets : 1) }.map(\.key)
    }

    @Test func trainsHereGeneratesOnTheServerAndSweepsExternalCheckpoints() async throws {
        let f = try PipelineFixture("pipeline-vllm")
        let server = try MockCompletionServer(baseModel: "qwen-base")
        let e = try Experiment.load(from: f.writeConfig(f.config(extra: Self.vllm(server))))
        let summary = try await PipelineRunner(e).run()
        let run = f.dir.appendingPathComponent("run")
        #expect(summary.done["generate"] == 4 * 4 * 2 * 2)
        #expect(try RunStatus.load(run: run).complete)

        // Adapter names carry the run folder's name and the id drawn when it was created.
        let id = try #require(try RunStore(run: run, create: false).meta("run_id"))
        let names = try Self.checkAnswers(run, prefix: "run-\(id)")
        #expect(names.count == 4 * 3)
        #expect(server.loadHistory.sorted() == names.sorted(), "each checkpoint's adapter loaded exactly once")
        #expect(server.loadedAdapters.isEmpty, "every adapter is released after its checkpoint")
        let bodies = server.completionRequests.compactMap { $0.json }
        #expect(bodies.count == 64 && bodies.filter { $0["model"]?.stringValue == "qwen-base" }.count == 16)
        #expect(Self.repeated(bodies).isEmpty)

        // A second call does nothing and asks the server nothing.
        let before = server.requests.count
        let again = try await PipelineRunner(e).run()
        #expect(again.nothingToDo && server.requests.count == before)

        // The scale-out case: checkpoints trained elsewhere, swept on the server. The model
        // folder holds only the tokenizer; adapter paths are rewritten to the server's view.
        let tokenizerOnly = f.dir.appendingPathComponent("tokenizer-only")
        try FileManager.default.createDirectory(at: tokenizerOnly, withIntermediateDirectories: true)
        for name in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: f.model.appendingPathComponent(name), to: tokenizerOnly.appendingPathComponent(name))
        }
        let remote = try MockCompletionServer(baseModel: "qwen-base", checkPaths: false)
        let checkpoints = run.appendingPathComponent("checkpoints")
        let sweep = """
            model: tokenizer-only
            output: sweep
            external_checkpoints:
              - {dataset: medical, seed: 0, path: \(checkpoints.path)/medical-seed0}
              - {dataset: math, seed: 11, path: \(checkpoints.path)/math-seed11}
            evaluation: {questions: [general.wish], samples: 2, max_new_tokens: 6}
            \(Self.vllm(remote, extra: ", run_tag: sweep1, path_map: {\"\(checkpoints.path)\": /mnt/ckpt}"))
            judges: {models: ["openai:mock-judge@\(f.server.baseURL)"], max_attempts: 2}
            detection: {methods: [threshold], resamples: 20}
            """
        let x = try await PipelineRunner(try Experiment.load(from: f.writeConfig(sweep, name: "sweep.yaml"))).run()
        #expect(x.done["generate"] == 2 * 4 * 2 && x.done["train"] == 0)
        let sweepNames = try Self.checkAnswers(f.dir.appendingPathComponent("sweep"), prefix: "sweep1")
        #expect(remote.loadHistory.sorted() == sweepNames.sorted() && sweepNames.count == 6)
        let paths = remote.requests.filter { $0.path.hasSuffix("load_lora_adapter") }.compactMap { $0.json?["lora_path"]?.stringValue }
        #expect(paths.count == 6 && paths.allSatisfy { $0.hasPrefix("/mnt/ckpt/") && $0.contains("/checkpoint-") }, "\(paths)")
        #expect(try RunStatus.load(run: f.dir.appendingPathComponent("sweep")).complete)
    }

    @Test func configErrorsNameTheKey() throws {
        let f = try PipelineFixture("pipeline-vllm-config")
        func failure(_ extra: String) -> String {
            do { _ = try Experiment.load(from: f.writeConfig(f.config(extra: extra))); return "" } catch { return "\(error)" }
        }
        #expect(failure("generation: {backend: local, api_key_env: K}").contains("generation.api_key_env: applies to backend: vllm only"))
        #expect(failure("generation: {backend: vllm, url: \"http://h/v1\", served_model: q, run_tag: \"a b\"}").contains("generation.run_tag"))
        #expect(failure("generation: {backend: vllm, url: \"http://h/v1\", served_model: q, path_map: [x]}").contains("generation.path_map"))
    }
}

@Suite
struct PipelineVLLMKillTests {
    @Test func killedRunsNeverAskTheServerTwiceForAStoredAnswer() throws {
        let f = try PipelineFixture("pipeline-vllm-kill")
        let server = try MockCompletionServer(baseModel: "qwen-base")
        let config = try f.writeConfig(f.config(extra: PipelineVLLMTests.vllm(server)))
        for point in ["train:7", "generate:1", "generate:6", "generate:4", "judge:3"] {
            let r = try runMisalign(["run", config.path, "--quiet"], env: ["MISALIGN_TEST_KILL_AT": point])
            #expect(r.signaled && r.status == SIGKILL, "expected a kill at \(point): \(r.status) \(r.err)")
        }
        let last = try runMisalign(["run", config.path, "--quiet"])
        #expect(last.status == 0, "\(last.err)")
        let run = f.dir.appendingPathComponent("run")
        #expect(try RunStatus.load(run: run).complete)
        let bodies = server.completionRequests.compactMap { $0.json }
        #expect(bodies.count == 64 && PipelineVLLMTests.repeated(bodies).isEmpty, "repeated completion requests: \(PipelineVLLMTests.repeated(bodies))")
        let id = try #require(try RunStore(run: run, create: false).meta("run_id"))
        let names = try PipelineVLLMTests.checkAnswers(run, prefix: "run-\(id)")
        #expect(server.loadHistory.sorted() == names.sorted(), "each adapter loaded once across the kills: \(server.loadHistory)")
    }
}
