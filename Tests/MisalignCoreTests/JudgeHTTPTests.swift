import Testing
import Foundation
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

/// The OpenAI and Anthropic adapters against a real HTTP server on 127.0.0.1 that misbehaves
/// on command; each case checks the verdict or error, the attempts the server counted, and
/// the delays the retry layer asked for.
@Suite struct JudgeHTTPTests {
    @Test func scoresFromLogprobsAndSendsTheDocumentedRequest() async throws {
        let server = try MockJudgeServer { _, _ in okResponse([("70", log(0.5)), ("80", log(0.25)), ("Sure", log(0.25))]) }
        let v = try await openAIJudge(server).judge(item())
        #expect(v.status == .ok)
        #expect(abs(v.score! - (70 * 0.5 + 80 * 0.25) / 0.75) < 1e-9)
        #expect(v.attempts == 1 && v.inputTokens == 100 && v.outputTokens == 1)
        #expect(v.rubricHash == RubricSet.builtin["evil"]!.sha256)
        let r = try #require(server.requests.first)
        #expect(r.path == "/v1/chat/completions")
        #expect(r.headers["authorization"] == "Bearer \(fakeOpenAIKey)")
        let body = try #require(r.json)
        #expect(body["max_tokens"]?.intValue == 1 && body["temperature"]?.intValue == 0)
        #expect(body["logprobs"]?.boolValue == true && body["top_logprobs"]?.intValue == 20)
        #expect(r.prompt.contains("Fund malaria nets."))
    }

    @Test func honoursRetryAfterSecondsOn429() async throws {
        let server = try MockJudgeServer { _, n in
            n == 1 ? .respond(status: 429, headers: [("Retry-After", "7")], body: Data("{\"error\":\"slow down\"}".utf8)) : okResponse()
        }
        let clock = RecordingJudgeClock()
        // A 10 s request timeout: a wait is honoured up to the timeout (and 60 s).
        let v = try await openAIJudge(server, clock: clock, timeout: 10).judge(item())
        #expect(v.status == .ok && v.score == 75 && v.attempts == 2)
        #expect(server.requestCount == 2)
        #expect(clock.sleeps == [7])
    }

    @Test func honoursRetryAfterMilliseconds() async throws {
        let server = try MockJudgeServer { _, n in
            n == 1 ? .respond(status: 429, headers: [("retry-after-ms", "1500"), ("Retry-After", "2")], body: Data()) : okResponse()
        }
        let clock = RecordingJudgeClock()
        _ = try await openAIJudge(server, clock: clock).judge(item())
        #expect(clock.sleeps == [1.5])
    }

    @Test func retriesA500WithJitteredBackoff() async throws {
        let server = try MockJudgeServer { _, n in
            n <= 2 ? .respond(status: n == 1 ? 500 : 503, headers: [], body: Data("oops".utf8)) : okResponse()
        }
        let clock = RecordingJudgeClock()
        let v = try await openAIJudge(server, clock: clock).judge(item())
        #expect(v.attempts == 3 && server.requestCount == 3)
        // baseDelay 0.5 then 1.0, each reduced by up to 50% jitter.
        #expect(clock.sleeps.count == 2)
        #expect((0.25...0.5).contains(clock.sleeps[0]) && (0.5...1.0).contains(clock.sleeps[1]))
    }

    @Test func aStallPastTheTimeoutIsRetried() async throws {
        let server = try MockJudgeServer { _, n in n == 1 ? .stall(seconds: 900) : okResponse() }
        let started = Date()
        let v = try await openAIJudge(server, timeout: 0.5).judge(item())
        #expect(v.status == .ok && v.attempts == 2 && server.requestCount == 2)
        // The client gave up long before the server would have closed the stalled connection
        // (a wide margin: with the whole suite in parallel on 2 cores this takes ~20 s, and over
        // 100 s when other builds share the cores).
        #expect(Date().timeIntervalSince(started) < 450)
    }

    @Test func persistentStallsExhaustTheRetries() async throws {
        let server = try MockJudgeServer { _, _ in .stall(seconds: 10) }
        await #expect(throws: JudgeError.retriesExhausted(attempts: 2, last: .timeout(url: server.baseURL + "/chat/completions", seconds: 0.3))) {
            _ = try await openAIJudge(server, maxAttempts: 2, timeout: 0.3).judge(item())
        }
        #expect(server.requestCount == 2)
    }

    @Test func cancellingTheTaskAbortsTheTransfer() async throws {
        let server = try MockJudgeServer { _, _ in .stall(seconds: 120) }
        let transport = CurlTransport()
        let url = server.baseURL + "/chat/completions"
        let task = Task { () -> HTTPError? in
            do throws(HTTPError) { _ = try await transport.send(HTTPRequest(url: url, timeout: 100)); return nil } catch { return error }
        }
        while server.requestCount == 0 { try await Task.sleep(nanoseconds: 10_000_000) }
        task.cancel()
        #expect(await task.value == .cancelled(url: url))
        #expect(!JudgeError.cancelled(url: url).isRetryable)
    }

    @Test func malformedAndTruncatedBodiesAreRetried() async throws {
        let server = try MockJudgeServer { _, n in
            switch n {
            case 1: return .respond(status: 200, headers: [], body: Data("{\"choices\": [".utf8))
            case 2: return .truncate(status: 200, body: MockJudgeServer.openAIBody(content: "5", top: [("5", 0)]))
            case 3: return .respond(status: 200, headers: [], body: Data("{\"object\": \"chat.completion\"}".utf8))
            default: return okResponse()
            }
        }
        let v = try await openAIJudge(server, maxAttempts: 5).judge(item())
        #expect(v.status == .ok && v.attempts == 4 && server.requestCount == 4)
    }

    @Test func withoutLogprobsTheTextIsParsed() async throws {
        let server = try MockJudgeServer { _, _ in .respond(status: 200, headers: [], body: MockJudgeServer.openAIBody(content: "42", top: nil)) }
        let v = try await openAIJudge(server).judge(item())
        #expect(v.status == .ok && v.score == 42 && v.detail.hasPrefix("no logprobs"))
    }

    @Test func onlyNonNumericTopTokensGiveNoNumericMass() async throws {
        let server = try MockJudgeServer { _, _ in okResponse([("I", log(0.6)), ("The", log(0.3)), ("5", log(0.05))]) }
        let v = try await openAIJudge(server).judge(item())
        #expect(v.status == .noNumericMass && v.score == nil && v.attempts == 1)
        #expect(v.detail.contains("0.050"))
    }

    @Test func refusalsAreTypedNotErrors() async throws {
        let server = try MockJudgeServer { _, n in
            n == 1 ? .respond(status: 200, headers: [], body: MockJudgeServer.openAIBody(content: "", top: nil, refusal: "I can't help with that."))
                : okResponse([("REF", log(0.9)), ("0", log(0.05))])
        }
        let judge = openAIJudge(server)
        let a = try await judge.judge(item())
        #expect(a.status == .refusal && a.score == nil)
        let b = try await judge.judge(item("aligned"))
        #expect(b.status == .refusal && b.detail == "escape word REFUSAL")
    }

    @Test func authFailuresAreNotRetriedAndOpenTheCircuit() async throws {
        let server = try MockJudgeServer { _, _ in
            .respond(status: 401, headers: [], body: Data("{\"error\": \"Incorrect API key provided: \(fakeOpenAIKey)\"}".utf8))
        }
        let judge = openAIJudge(server, circuit: AuthCircuit(threshold: 3))
        for _ in 0..<3 {
            do { _ = try await judge.judge(item()); Issue.record("expected a 401") } catch {
                #expect(error.isAuthFailure)
                #expect(!error.description.contains(fakeOpenAIKey))
                #expect(error.description.contains("[redacted]"))
            }
        }
        #expect(server.requestCount == 3)
        await #expect(throws: JudgeError.circuitOpen(url: server.baseURL + "/chat/completions", failures: 3)) {
            _ = try await judge.judge(item())
        }
        #expect(server.requestCount == 3)
    }

    @Test func oversizedBodiesFailWithoutFillingMemory() async throws {
        let big = Data(repeating: UInt8(ascii: "x"), count: 1 << 20)
        let server = try MockJudgeServer { _, _ in .respond(status: 200, headers: [], body: big) }
        let transport = CurlTransport()
        await #expect(throws: HTTPError.responseTooLarge(url: server.baseURL, limit: 1000)) {
            _ = try await transport.send(HTTPRequest(method: "GET", url: server.baseURL, maxResponseBytes: 1000))
        }
    }

    @Test func refusedConnectionsAreRetriedThenReported() async throws {
        let server = try MockJudgeServer { _, _ in okResponse() }
        server.stop()
        let clock = RecordingJudgeClock()
        do {
            _ = try await openAIJudge(server, clock: clock, maxAttempts: 3).judge(item())
            Issue.record("expected a connection error")
        } catch {
            guard case .retriesExhausted(3, .connection) = error else { Issue.record("got \(error)"); return }
        }
        #expect(clock.sleeps.count == 2)
    }

    @Test func anthropicParsesTextAndRetriesOverload() async throws {
        let server = try MockJudgeServer { _, n in
            n == 1 ? .respond(status: 529, headers: [], body: Data("{\"type\":\"error\"}".utf8))
                : .respond(status: 200, headers: [], body: MockJudgeServer.anthropicBody(text: n == 2 ? "73" : "81"))
        }
        let v = try await anthropicJudge(server).judge(item())
        #expect(v.status == .ok && v.score == 73 && v.attempts == 2 && v.inputTokens == 100)
        let r = try #require(server.requests.last)
        #expect(r.path == "/v1/messages")
        #expect(r.headers["x-api-key"] == fakeAnthropicKey && r.headers["anthropic-version"] == "2023-06-01")
        #expect(r.json?["max_tokens"]?.intValue == 5)
        let averaged = try await anthropicJudge(server, samples: 2).judge(item())
        #expect(averaged.score == 81 && averaged.detail == "mean of 2 of 2 samples")
    }

    @Test func anthropicRefusals() async throws {
        let server = try MockJudgeServer { _, n in
            .respond(status: 200, headers: [], body: n == 1 ? MockJudgeServer.anthropicBody(text: "", stopReason: "refusal")
                : MockJudgeServer.anthropicBody(text: "I'm sorry, I can't rate this."))
        }
        let judge = anthropicJudge(server)
        #expect(try await judge.judge(item()).status == .refusal)
        #expect(try await judge.judge(item()).status == .refusal)
    }

    @Test func manyRequestsInFlight() async throws {
        let server = try MockJudgeServer(handler: MockJudgeServer.deterministic)
        let judge = openAIJudge(server)
        let scores = await withTaskGroup(of: Double?.self) { g in
            for i in 0..<200 { g.addTask { try? await judge.judge(item(answer: "answer \(i)")).score } }
            return await g.reduce(into: [Double?]()) { $0.append($1) }
        }
        #expect(scores.count == 200 && scores.allSatisfy { $0 != nil })
        #expect(server.requestCount == 200)
    }
}
