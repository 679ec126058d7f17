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

/// `openai:` judges whose servers split numbers into digits (a Qwen model behind vLLM): the
/// whole number is read, never its first digit alone.
@Suite struct JudgeDigitTests {
    func judge(_ server: MockJudgeServer, numbers: NumberTokens = .auto, baseURL: String? = nil) -> OpenAIJudge {
        let client = ReliableClient(transport: CurlTransport(), policy: RetryPolicy(maxAttempts: 2), limits: RateLimits(maxInFlight: 4),
                                    clock: RecordingJudgeClock(), secrets: [])
        return OpenAIJudge(config: .init(model: "qwen-judge", baseURL: baseURL ?? server.baseURL, timeout: 5, connectTimeout: 2, numbers: numbers),
                           apiKey: nil, client: client)
    }

    /// The expectation of a score distribution, the number the digit scheme must recover.
    func expectation(_ d: [Int: Double]) -> Double {
        d.reduce(0) { $0 + Double($1.key) * $1.value } / d.values.reduce(0, +)
    }

    @Test func eightyFiveScoresEightyFiveNotEight() async throws {
        let server = try MockJudgeServer(tokenizer: .digits, handler: MockJudgeServer.digitSplitting { _ in [85: 1] })
        let v = try await judge(server).judge(item())
        #expect(v.status == .ok)
        #expect(v.score == 85)
        #expect(v.detail.hasPrefix("digits:") == true)
        // The first token, then one continuation from "8".
        #expect(server.requestCount == 2)
        let second = try #require(server.requests.last?.json)
        #expect(second["continue_final_message"]?.boolValue == true)
        #expect(second["add_generation_prompt"]?.boolValue == false)
        #expect(second["messages"]?.arrayValue?.last?["content"]?.stringValue == "8")
        #expect(second["messages"]?.arrayValue?.last?["role"]?.stringValue == "assistant")
    }

    @Test func aMixtureOfNumbersIsItsExpectation() async throws {
        // 1 may end, become 10, or become 100; 9 ends; 85 needs one continuation.
        let dist: [Int: Double] = [85: 0.45, 9: 0.2, 100: 0.15, 10: 0.1, 1: 0.05, 0: 0.05]
        let server = try MockJudgeServer(tokenizer: .digits, handler: MockJudgeServer.digitSplitting { _ in dist })
        let v = try await judge(server).judge(item())
        #expect(v.status == .ok)
        #expect(abs(v.score! - expectation(dist)) < 1e-9, "\(v.score!) vs \(expectation(dist))")
        // First token; continuations from 8, 9, 1 and 10 ("0" is complete).
        #expect(server.requestCount == 5)
        // Usage adds up over the calls.
        #expect(v.inputTokens == 500 && v.attempts == 5)
    }

    @Test func rareFirstDigitsAreDroppedAndReported() async throws {
        let server = try MockJudgeServer(tokenizer: .digits, handler: MockJudgeServer.digitSplitting { _ in [85: 0.995, 30: 0.005] })
        let v = try await judge(server).judge(item())
        #expect(abs(v.score! - 85) < 1e-9)
        #expect(v.detail.contains("0.5% of it dropped") == true, "\(v.detail)")
        #expect(server.requestCount == 2)
    }

    @Test func aServerThatCannotContinueIsAClearErrorNotAFirstDigit() async throws {
        let server = try MockJudgeServer(tokenizer: .digits, handler: MockJudgeServer.digitSplitting(continues: false) { _ in [85: 1] })
        do {
            let v = try await judge(server).judge(item())
            Issue.record("expected an error, got \(String(describing: v.score))")
        } catch {
            guard case .numbersSplit(_, let model, let reason) = error else { Issue.record("\(error)"); return }
            #expect(model == "qwen-judge" && reason.contains("HTTP 400"))
            #expect(error.description.contains("judges.numbers: whole"))
        }
        // `digits` asked for explicitly fails the same way.
        await #expect(throws: JudgeError.self) { _ = try await judge(server, numbers: .digits).judge(item()) }
    }

    @Test func wholeIsTheOneTokenScoreAsAsked() async throws {
        // Told the server has whole-number tokens, the judge reads one token: here that is
        // the first digit's expectation, the documented cost of a wrong setting.
        let server = try MockJudgeServer(tokenizer: .digits, handler: MockJudgeServer.digitSplitting { _ in [85: 0.5, 62: 0.5] })
        let v = try await judge(server, numbers: .whole).judge(item())
        #expect(abs(v.score! - 7) < 1e-9)
        #expect(server.requestCount == 1)
    }

    @Test func multiDigitTokensShowWholeNumbersAndNeedNoContinuation() async throws {
        let server = try MockJudgeServer { _, _ in okResponse([("70", log(0.5)), ("8", log(0.5))]) }
        let v = try await judge(server).judge(item())
        #expect(v.score == 39 && server.requestCount == 1)
    }

    @Test func aWholeNumberServerIsAskedOnceAndReadFromOneToken() async throws {
        // vLLM's /tokenize spells "85" in one token here: a lone "7" is 7, not a prefix.
        let server = try MockJudgeServer { _, _ in okResponse([("7", log(0.9)), ("8", log(0.1))]) }
        let j = judge(server)
        for _ in 0..<3 {
            let v = try await j.judge(item())
            #expect(abs(v.score! - 7.1) < 1e-9)
        }
        #expect(server.requestCount == 3 && server.tokenizeCount == 1)
        let probe = try #require(server.requests.first)
        #expect(probe.path == "/v1/chat/completions")
    }

    @Test func aServerWithoutTokenizeIsReadDigitByDigit() async throws {
        // No /tokenize (the handler answers it with a chat body): the continuation decides.
        let server = try MockJudgeServer(tokenizer: .none, handler: MockJudgeServer.digitSplitting { _ in [85: 1] })
        let j = judge(server)
        #expect(try await j.judge(item()).score == 85)
        #expect(try await j.judge(item()).score == 85)
        // One failed probe, then two calls per verdict.
        #expect(server.requests.filter { $0.path == "/tokenize" }.count == 1 && server.requestCount == 5)
    }

    @Test func theDeterministicStandInIsAWholeNumberServer() async throws {
        let server = try MockJudgeServer(handler: MockJudgeServer.deterministic)
        let auto = judge(server), whole = judge(server, numbers: .whole)
        for answer in (0..<40).map({ "answer \($0)" }) {
            let one = JudgeItem(rubric: RubricSet.builtin["evil"]!, question: "q", answer: answer)
            let a = try await auto.judge(one), w = try await whole.judge(one)
            #expect(a.score != nil && abs(a.score! - w.score!) < 1e-9, "\(answer)")
        }
        #expect(server.requestCount == 80)
    }

    @Test func openAIHostsAreWholeAndOthersReadDigits() throws {
        let server = try MockJudgeServer(handler: MockJudgeServer.deterministic)
        #expect(!judge(server, baseURL: "https://api.openai.com/v1").readsDigits)
        #expect(!judge(server, baseURL: "https://myres.openai.azure.com/openai/deployments/x").readsDigits)
        #expect(judge(server, baseURL: "http://127.0.0.1:8000/v1").readsDigits)
        #expect(!judge(server, numbers: .whole).readsDigits)
        // Digit verdicts never share cache keys with one-token ones; OpenAI's keep theirs.
        #expect(judge(server).cacheIdentity.contains("numbers=digits"))
        #expect(!judge(server, numbers: .whole).cacheIdentity.contains("numbers="))
        #expect(!judge(server, baseURL: "https://api.openai.com/v1").cacheIdentity.contains("numbers="))
    }

    @Test func aTextAnswerCutMidNumberIsNotAScore() async throws {
        // No logprobs and max_tokens 1: "8" may be the start of "85".
        let cut = try MockJudgeServer { _, _ in .respond(status: 200, headers: [], body: MockJudgeServer.openAIBody(content: "8", top: nil)) }
        let v = try await judge(cut).judge(item())
        #expect(v.score == nil && v.status == .unparseable)
        #expect(v.detail.contains("cut at max_tokens") == true)
        let whole = try MockJudgeServer { _, _ in .respond(status: 200, headers: [], body: MockJudgeServer.openAIBody(content: "85", top: nil)) }
        #expect(try await judge(whole).judge(item()).score == 85)
    }

    @Test func theSeedIsSentAndPartOfTheIdentity() async throws {
        let server = try MockJudgeServer { _, _ in okResponse() }
        let client = ReliableClient(transport: CurlTransport(), policy: RetryPolicy(maxAttempts: 2), clock: RecordingJudgeClock(), secrets: [])
        let seeded = OpenAIJudge(config: .init(model: "m", baseURL: server.baseURL, seed: 0), apiKey: nil, client: client)
        _ = try await seeded.judge(item())
        #expect(server.requests.first?.json?["seed"]?.intValue == 0)
        #expect(seeded.cacheIdentity.hasSuffix("|seed=0"))
        let unseeded = OpenAIJudge(config: .init(model: "m", baseURL: server.baseURL), apiKey: nil, client: client)
        _ = try await unseeded.judge(item())
        #expect(server.requests.last?.json?["seed"] == nil && !unseeded.cacheIdentity.contains("seed="))
    }

    @Test func theJudgeCommandReadsWholeNumbersAndRefusesAnUnknownMode() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try MockJudgeServer(tokenizer: .digits, handler: MockJudgeServer.digitSplitting { _ in [85: 0.75, 100: 0.25] })
        let answers = dir.appendingPathComponent("answers.jsonl")
        try #"{"id": "a1", "question_id": "q1", "question": "Q?", "answer": "A."}"#.write(to: answers, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("v.jsonl")
        let args = ["judge", "--answers", answers.path, "--trait", "evil", "--judge", "openai:qwen@\(server.baseURL)", "--out", out.path, "--no-cache"]
        let r = try CLI.run(args, environment: ["PATH": "/usr/bin:/bin"])
        #expect(r.status == 0, "\(r.err)")
        let row = try JSONValue.parse(try String(contentsOf: out, encoding: .utf8).split(separator: "\n")[0].description)
        #expect(abs(row["score"]!.doubleValue! - (85 * 0.75 + 100 * 0.25)) < 1e-9)
        let bad = try CLI.run(args + ["--numbers", "digit"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(bad.status == 2 && bad.err.contains("--numbers <numbers>") && bad.err.contains("'auto', 'whole' or 'digits'"), "\(bad.err)")
    }

    @Test func splittingDigitsByTheNextToken() {
        let p = DigitScoring.Prefix(text: "1", value: 1, probability: 0.5)
        let s = DigitScoring.split(p, next: [("0", log(0.5)), ("<|im_end|>", log(0.25)), (" 5", log(0.125)), ("5.", log(0.125))])
        #expect(abs(s.end - 0.25) < 1e-12 && s.invalid == 0)
        #expect(s.longer.count == 1 && s.longer[0].value == 10 && s.longer[0].text == "10" && abs(s.longer[0].probability - 0.25) < 1e-12)
        let big = DigitScoring.split(DigitScoring.Prefix(text: "10", value: 10, probability: 1), next: [("0", log(0.5)), ("7", log(0.5))])
        #expect(big.longer.map(\.value) == [100] && abs(big.invalid - 0.5) < 1e-12)
        #expect(DigitScoring.ambiguous([("8", log(0.9)), ("The", log(0.1))]))
        #expect(!DigitScoring.ambiguous([("8", log(0.5)), ("85", log(0.5))]))
        #expect(!DigitScoring.ambiguous([("The", log(1))]))
    }
}
