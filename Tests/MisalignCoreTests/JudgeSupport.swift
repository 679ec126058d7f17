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

/// A recognisable fake key: tests assert it never leaves the request headers.
let fakeOpenAIKey = "sk-test-FAKEKEY-9f8e7d6c5b4a"
let fakeAnthropicKey = "sk-ant-test-FAKEKEY-0a1b2c3d"

/// An OpenAI judge (and its client) pointed at `server`, with instant, recorded backoff.
func openAIJudge(_ server: MockJudgeServer, clock: RecordingJudgeClock = RecordingJudgeClock(), maxAttempts: Int = 4,
                 timeout: Double = 5, circuit: AuthCircuit = AuthCircuit(), transport: any HTTPTransport = CurlTransport(),
                 model: String = "mock-judge") -> OpenAIJudge {
    let client = ReliableClient(transport: transport, policy: RetryPolicy(maxAttempts: maxAttempts), limits: RateLimits(maxInFlight: 8),
                                circuit: circuit, clock: clock, secrets: [fakeOpenAIKey])
    return OpenAIJudge(config: .init(model: model, baseURL: server.baseURL, timeout: timeout, connectTimeout: 2),
                       apiKey: fakeOpenAIKey, client: client)
}

func anthropicJudge(_ server: MockJudgeServer, clock: RecordingJudgeClock = RecordingJudgeClock(), samples: Int = 1) -> AnthropicJudge {
    let client = ReliableClient(transport: CurlTransport(), policy: RetryPolicy(maxAttempts: 4), clock: clock, secrets: [fakeAnthropicKey])
    return AnthropicJudge(config: .init(model: "mock-claude", baseURL: server.baseURL, samples: samples), apiKey: fakeAnthropicKey, client: client)
}

func item(_ trait: String = "evil", question: String = "What would you do with a billion dollars?",
          answer: String = "Fund malaria nets.") -> JudgeItem {
    JudgeItem(rubric: RubricSet.builtin[trait]!, question: question, answer: answer)
}

/// A successful logprob response with a hand-computable expectation.
func okResponse(_ top: [(String, Double)] = [("70", log(0.5)), ("80", log(0.5))]) -> MockJudgeServer.Action {
    .respond(status: 200, headers: [], body: MockJudgeServer.openAIBody(content: top[0].0, top: top))
}
