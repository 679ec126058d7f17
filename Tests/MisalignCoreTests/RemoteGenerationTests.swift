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

let fakeServerKey = "sk-vllm-FAKEKEY-3c4d5e6f7a8b"

/// Two `checkpoint-<step>` folders with an adapter config (all the stand-in server checks).
func fakeCheckpoints(_ steps: [Int], in dir: URL) throws -> [CheckpointDirectory] {
    try steps.map { s in
        let d = dir.appendingPathComponent("checkpoint-\(s)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: d.appendingPathComponent("adapter_config.json"))
        return try CheckpointDirectory(directory: d)
    }
}

func endpoint(_ server: MockCompletionServer, clock: RecordingJudgeClock = RecordingJudgeClock(), maxAttempts: Int = 4,
              key: Bool = false) throws -> RemoteEndpoint {
    try RemoteEndpoint(baseURL: server.baseURL, apiKeyVariable: key ? "TEST_VLLM_KEY" : nil,
                       environment: ["TEST_VLLM_KEY": fakeServerKey], maxInFlight: 4, maxAttempts: maxAttempts,
                       clock: clock, timeout: 30, connectTimeout: 10) // generous: a 429 test once saw an extra retry under the full suite's load, most likely a 5 s timeout
}

let remotePrompt: [Int32] = [151644, 872, 198, 9707, 151645]

@Suite struct RemoteGenerationTests {
    @Test func generatesFromTheBaseAndTwoCheckpointsThenReleases() async throws {
        let dir = Fixtures.temporaryDirectory("remote"); defer { try? FileManager.default.removeItem(at: dir) }
        let server = try MockCompletionServer(baseModel: "qwen-base")
        let cks = try fakeCheckpoints([2, 4], in: dir)
        let backend = try VLLMGenerationBackend(endpoint: try endpoint(server), servedModel: "qwen-base", runTag: "med-s0")
        let request = GenerationRequest(prompt: remotePrompt, samples: 3, maxNewTokens: 50,
                                        sampling: SamplingParameters(temperature: 1, topK: 20, topP: 0.9), seed: 7)
        var texts: [[String]] = []
        for ck in [nil] + cks.map({ $0 as any Checkpoint }) {
            let name = backend.adapterName(for: ck)
            let out = try await backend.generator(for: ck).generate([request], onToken: nil)
            #expect(out.map(\.sample) == [0, 1, 2])
            for c in out {
                let expected = MockCompletionServer.text(model: name, prompt: remotePrompt.map(Int.init),
                                                         seed: RemoteWire.sampleSeed(request, sample: c.sample), choice: 0)
                #expect(c.text == expected && c.tokens.count == 5 && c.finishReason == .stop && c.promptTokens == 5)
            }
            texts.append(out.map(\.text))
        }
        #expect(server.loadHistory == ["med-s0-step-2", "med-s0-step-4"])
        #expect(server.loadedAdapters["med-s0-step-4"] == cks[1].directory.standardizedFileURL.path)
        #expect(Set(texts.flatMap { $0 }).count == 9, "each checkpoint and sample answers differently")
        // The request carries the sampling settings, one sample per request, a per-sample seed.
        let bodies = server.completionRequests.compactMap(\.json)
        #expect(bodies.count == 9)
        for b in bodies {
            #expect(b["n"]?.intValue == 1 && b["top_k"]?.intValue == 20 && b["top_p"]?.doubleValue == 0.9)
            #expect(b["prompt"]?.arrayValue?.compactMap(\.intValue) == remotePrompt.map(Int.init))
            #expect(b["return_tokens_as_token_ids"]?.boolValue == true && b["logprobs"]?.intValue == 0)
            #expect(b["min_p"] == nil && b["repetition_penalty"] == nil, "neutral settings are left out")
        }
        #expect(Set(bodies.compactMap { $0["seed"]?.intValue }).count == 3)
        // Reproducible: a fresh backend gives the same texts.
        let again = try VLLMGenerationBackend(endpoint: try endpoint(server), servedModel: "qwen-base", runTag: "med-s0")
        #expect(try await again.generator(for: cks[0]).generate([request], onToken: nil).map(\.text) == texts[1])
        for ck in cks { try await backend.release(ck) }
        #expect(server.loadedAdapters.isEmpty)
        try await backend.release(cks[0])  // already gone: still fine
    }

    /// A checkpoint holding a whole model (`CheckpointWeights.model`) is not sent to the server
    /// as an adapter: the refusal names the folder, and nothing is loaded.
    @Test func aWholeModelCheckpointIsRefusedNotSentAsAnAdapter() async throws {
        let dir = Fixtures.temporaryDirectory("remote"); defer { try? FileManager.default.removeItem(at: dir) }
        let server = try MockCompletionServer()
        let ck = try fakeCheckpoints([8], in: dir)[0]
        try Data("{}".utf8).write(to: ck.directory.appendingPathComponent("config.json"))
        try Data().write(to: ck.directory.appendingPathComponent("model.safetensors"))
        let backend = try VLLMGenerationBackend(endpoint: try endpoint(server), servedModel: "base", runTag: "r1")
        do { _ = try await backend.generator(for: ck); Issue.record("accepted") } catch {
            #expect("\(error)".contains("\(ck.directory.path) holds a whole model, not a LoRA adapter"), "\(error)")
        }
        #expect(server.loadHistory.isEmpty)
    }

    @Test func reloadingAfterACrashIsIdempotent() async throws {
        let dir = Fixtures.temporaryDirectory("remote"); defer { try? FileManager.default.removeItem(at: dir) }
        let server = try MockCompletionServer()
        let ck = try fakeCheckpoints([6], in: dir)[0]
        let first = try VLLMGenerationBackend(endpoint: try endpoint(server), servedModel: "base", runTag: "r1")
        _ = try await first.generator(for: ck)
        // A new process (same run tag) loads the same adapter again: vLLM says 400 "already loaded".
        let second = try VLLMGenerationBackend(endpoint: try endpoint(server), servedModel: "base", runTag: "r1")
        let out = try await second.generator(for: ck).generate([GenerationRequest(prompt: remotePrompt)], onToken: nil)
        #expect(out[0].text.hasPrefix("[r1-step-6]"))
        #expect(server.loadHistory == ["r1-step-6"])
        let loads = server.requests.filter { $0.path.hasSuffix("/load_lora_adapter") }
        #expect(loads.count == 2, "the refused second load is not retried")
    }

    @Test func mapsAdapterPathsToTheServersFilesystem() async throws {
        let server = try MockCompletionServer(checkPaths: false)
        let maps = [try AdapterPathMapping(parsing: "/home/me/runs=/mnt/runs"), AdapterPathMapping(local: "/home/me/runs/big/", server: "/fast/big")]
        let backend = try VLLMGenerationBackend(endpoint: try endpoint(server), servedModel: "base", runTag: "t", pathMappings: maps)
        #expect(backend.serverPath(for: URL(fileURLWithPath: "/home/me/runs/a/checkpoint-2")) == "/mnt/runs/a/checkpoint-2")
        #expect(backend.serverPath(for: URL(fileURLWithPath: "/home/me/runs/big/checkpoint-2")) == "/fast/big/checkpoint-2")
        #expect(backend.serverPath(for: URL(fileURLWithPath: "/home/me/runsx/checkpoint-2")) == "/home/me/runsx/checkpoint-2")
        let ck = try CheckpointDirectory(directory: URL(fileURLWithPath: "/home/me/runs/a/checkpoint-8"))
        _ = try await backend.generator(for: ck)
        #expect(server.loadedAdapters == ["t-step-8": "/mnt/runs/a/checkpoint-8"])
        #expect(throws: RemoteGenerationError.self) { try AdapterPathMapping(parsing: "/only-one-side") }
    }

    @Test func aDownServerIsNamed() async throws {
        let server = try MockCompletionServer()
        let ep = try endpoint(server, maxAttempts: 2)
        server.stop()
        let g = OpenAICompatibleGenerator(endpoint: ep, model: "base")
        await #expect {
            _ = try await g.generate([GenerationRequest(prompt: remotePrompt)], onToken: nil)
        } throws: { e in
            guard case .retriesExhausted(2, .serverDown(let url, _)) = e as? RemoteGenerationError else { return false }
            return url.hasSuffix("/v1/completions") && "\(e)".contains("is it running")
        }
    }

    @Test func a429StormIsRiddenOutHonouringRetryAfter() async throws {
        let server = try MockCompletionServer(fault: { r, n in
            n <= 3 ? .respond(status: 429, headers: [("Retry-After", "7")], body: Data(#"{"error":{"message":"slow down"}}"#.utf8)) : nil
        })
        let clock = RecordingJudgeClock()
        let g = OpenAICompatibleGenerator(endpoint: try endpoint(server, clock: clock, maxAttempts: 5), model: "base")
        let out = try await g.generate([GenerationRequest(prompt: remotePrompt)], onToken: nil)
        #expect(out.count == 1 && out[0].text.hasPrefix("[base]"))
        #expect(clock.sleeps == [7, 7, 7] && server.requests.count == 4, "slept \(clock.sleeps), \(server.requests.count) requests")
    }

    @Test func malformedBodiesNameTheField() async throws {
        let server = try MockCompletionServer(fault: { _, _ in
            .respond(status: 200, headers: [], body: Data(#"{"choices":[{"txt":"hi","finish_reason":"stop"}]}"#.utf8))
        })
        let g = OpenAICompatibleGenerator(endpoint: try endpoint(server, maxAttempts: 2), model: "base")
        await #expect {
            _ = try await g.generate([GenerationRequest(prompt: remotePrompt)], onToken: nil)
        } throws: { e in
            guard case .retriesExhausted(_, .malformedResponse(_, let field, _)) = e as? RemoteGenerationError else { return false }
            return field == "choices[0].text"
        }
        let garbage = try MockCompletionServer(fault: { _, _ in .respond(status: 200, headers: [], body: Data("<html>".utf8)) })
        let g2 = OpenAICompatibleGenerator(endpoint: try endpoint(garbage, maxAttempts: 1), model: "base")
        await #expect {
            _ = try await g2.generate([GenerationRequest(prompt: remotePrompt)], onToken: nil)
        } throws: { e in "\(e)".contains("body is not JSON") }
    }

    @Test func unknownModelsAndUnreadableAdaptersAreTypedErrors() async throws {
        let dir = Fixtures.temporaryDirectory("remote"); defer { try? FileManager.default.removeItem(at: dir) }
        let server = try MockCompletionServer()
        let g = OpenAICompatibleGenerator(endpoint: try endpoint(server), model: "run-step-99")
        await #expect {
            _ = try await g.generate([GenerationRequest(prompt: remotePrompt)], onToken: nil)
        } throws: { e in
            guard case .unknownModel(_, "run-step-99", let m) = e as? RemoteGenerationError else { return false }
            return m.contains("does not exist") && server.requests.count == 1
        }
        let missing = try CheckpointDirectory(directory: dir.appendingPathComponent("checkpoint-3"))
        let backend = try VLLMGenerationBackend(endpoint: try endpoint(server), servedModel: "base", runTag: "r")
        await #expect {
            _ = try await backend.generator(for: missing)
        } throws: { e in
            guard case .adapterLoad("r-step-3", _, 404, _) = e as? RemoteGenerationError else { return false }
            return "\(e)".contains("generation.path_map")
        }
        #expect(throws: RemoteGenerationError.self) { try VLLMGenerationBackend(endpoint: try endpoint(server), servedModel: "b", runTag: "a b") }
    }

    @Test func aRetriedCallResendsOnlyTheFailedSamples() async throws {
        let failing = FailSwitch()
        let request = GenerationRequest(prompt: remotePrompt, samples: 4, seed: 3)
        let badSeed = RemoteWire.sampleSeed(request, sample: 2)
        let server = try MockCompletionServer(fault: { r, _ in
            failing.on && r.json?["seed"]?.intValue.map(Int64.init) == badSeed
                ? .respond(status: 500, headers: [], body: Data(#"{"error":{"message":"engine died"}}"#.utf8)) : nil
        })
        let g = OpenAICompatibleGenerator(endpoint: try endpoint(server, maxAttempts: 2), model: "base")
        await #expect(throws: RemoteGenerationError.self) { _ = try await g.generate([request], onToken: nil) }
        let firstRound = server.completionRequests.count
        #expect(firstRound == 5, "three good samples once, the bad one twice")
        failing.on = false
        let out = try await g.generate([request], onToken: nil)
        #expect(out.map(\.sample) == [0, 1, 2, 3])
        let secondRound = server.completionRequests.dropFirst(firstRound)
        #expect(secondRound.count == 1 && secondRound.first?.json?["seed"]?.intValue.map(Int64.init) == badSeed)
    }

    @Test func theKeyIsSentButNeverEchoed() async throws {
        let server = try MockCompletionServer(fault: { r, _ in
            // A hostile server that echoes the Authorization header back in its error.
            .respond(status: 400, headers: [], body: Data("{\"error\":{\"message\":\"bad header \(r.headers["authorization"] ?? "")\"}}".utf8))
        })
        let g = OpenAICompatibleGenerator(endpoint: try endpoint(server, key: true), model: "base")
        await #expect {
            _ = try await g.generate([GenerationRequest(prompt: remotePrompt)], onToken: nil)
        } throws: { e in
            let text = "\(e) \(String(reflecting: e))"
            return !text.contains(fakeServerKey) && text.contains("[redacted]")
        }
        #expect(server.requests.first?.headers["authorization"] == "Bearer \(fakeServerKey)")
        #expect(throws: RemoteGenerationError.missingAPIKey(variable: "NOPE_KEY")) {
            try RemoteEndpoint(baseURL: server.baseURL, apiKeyVariable: "NOPE_KEY", environment: [:])
        }
    }
}

final class FailSwitch: @unchecked Sendable {
    private let lock = NSLock()
    private var value = true
    var on: Bool {
        get { lock.lock(); defer { lock.unlock() }; return value }
        set { lock.lock(); value = newValue; lock.unlock() }
    }
}

@Suite
struct RemoteGenerateCLITests {
    @Test func generateDelegatesToTheServer() throws {
        let dir = Fixtures.temporaryDirectory("remote-cli"); defer { try? FileManager.default.removeItem(at: dir) }
        let server = try MockCompletionServer(baseModel: "qwen")
        let ck = try fakeCheckpoints([4], in: dir)[0]
        let args = ["generate", "--tokenizer", Fixtures.url("tokenizer").path, "--server", server.baseURL, "--served-model", "qwen",
                    "--prompt", "Hi there", "--samples", "2", "--json", "--seed", "5"]
        let r = try CLI.run(args + ["--adapter", ck.directory.path, "--run-tag", "demo"])
        #expect(r.status == 0, "\(r.err)")
        let lines = try r.out.split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(lines.count == 2 && lines.allSatisfy { $0["text"]?.stringValue?.hasPrefix("[demo-step-4]") == true })
        #expect(lines.allSatisfy { $0["ids"]?.arrayValue?.count == 5 })
        #expect(server.loadedAdapters["demo-step-4"] != nil)
        let base = try CLI.run(args)
        #expect(base.status == 0 && base.out.contains("[qwen]"), "\(base.err)")
        server.stop()
        let down = try CLI.run(args + ["--server-timeout", "2", "--server-max-attempts", "2"])
        #expect(down.status != 0 && down.err.contains("cannot reach the generation server"), "\(down.err)")
        let missing = try CLI.run(["generate", "--server", "http://127.0.0.1:9/v1", "--prompt", "x"])
        #expect(missing.status != 0 && missing.err.contains("--tokenizer"))
    }
}
