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

@Suite struct JudgeReliabilityTests {
    @Test func retryAfterForms() {
        let now = Date(timeIntervalSince1970: 784_111_777) // Sun, 06 Nov 1994 08:49:37 GMT
        #expect(RetryPolicy.serverHint(headers: ["retry-after": "120"]) == 120)
        #expect(RetryPolicy.serverHint(headers: ["retry-after": "Sun, 06 Nov 1994 08:50:07 GMT"], now: now) == 30)
        #expect(RetryPolicy.serverHint(headers: ["retry-after": "Sunday, 06-Nov-94 08:50:07 GMT"], now: now) == 30)
        #expect(RetryPolicy.serverHint(headers: ["retry-after": "Sun Nov  6 08:50:07 1994"], now: now) == 30)
        #expect(RetryPolicy.serverHint(headers: ["retry-after-ms": "250"]) == 0.25)
        #expect(RetryPolicy.serverHint(headers: ["retry-after": "soon"]) == nil)
        #expect(RetryPolicy.serverHint(headers: [:]) == nil)
    }

    @Test func backoffDoublesAndCaps() {
        let p = RetryPolicy(baseDelay: 1, maxDelay: 5, jitter: 0.5, maxRetryAfter: 60)
        #expect(p.delay(afterAttempt: 1, serverHint: nil, random: 0) == 1)
        #expect(p.delay(afterAttempt: 3, serverHint: nil, random: 0) == 4)
        #expect(p.delay(afterAttempt: 9, serverHint: nil, random: 0) == 5)
        #expect(p.delay(afterAttempt: 3, serverHint: nil, random: 0.999) > 2)
        #expect(p.delay(afterAttempt: 1, serverHint: 600, random: 0) == 60)
    }

    @Test func requestsPerMinuteBudgetWaits() async {
        let clock = RecordingJudgeClock()
        let limiter = RateLimiter(RateLimits(maxInFlight: 100, requestsPerMinute: 60), clock: clock)
        for _ in 0..<62 {
            await limiter.acquire(tokens: 1)
            await limiter.release(estimatedTokens: 1, actualTokens: 1)
        }
        // 60 pass at once; each further request waits one second of refill.
        #expect(clock.sleeps.count == 2)
        #expect(abs(clock.now() - 2) < 1e-9)
    }

    @Test func tokensPerMinuteBudgetWaits() async {
        let clock = RecordingJudgeClock()
        let limiter = RateLimiter(RateLimits(maxInFlight: 100, tokensPerMinute: 6000), clock: clock)
        await limiter.acquire(tokens: 6000)
        await limiter.release(estimatedTokens: 6000, actualTokens: 6000)
        await limiter.acquire(tokens: 100)
        #expect(abs(clock.now() - 1) < 1e-9) // 100 tokens at 100 per second
    }

    @Test func concurrencyLimitHolds() async throws {
        // The server itself counts the requests inside its handler at once (a polling probe
        // missed the overlap when other builds starved it of CPU).
        let peak = PeakCounter()
        let server = try MockJudgeServer { _, _ in
            peak.enter(); Thread.sleep(forTimeInterval: 0.2); peak.leave(); return okResponse()
        }
        let client = ReliableClient(transport: CurlTransport(), limits: RateLimits(maxInFlight: 3))
        let judge = OpenAIJudge(config: .init(model: "m", baseURL: server.baseURL), apiKey: nil, client: client)
        await withTaskGroup(of: Void.self) { g in
            for i in 0..<12 { g.addTask { _ = try? await judge.judge(item(answer: "a\(i)")) } }
        }
        #expect(server.requestCount == 12)
        #expect(server.requests.allSatisfy { $0.headers["authorization"] == nil })
        #expect(peak.value <= 3)
        #expect(peak.value >= 2) // requests did overlap, so the limit was exercised
    }

    @Test func sha256MatchesKnownVectors() throws {
        // Vectors from Python's hashlib (Tests/Fixtures/judge/make_agreement_cases.py writes them).
        let cases = try JSONValue.parse(Data(contentsOf: Fixtures.url("judge/sha256_cases.json")))
        for c in cases.arrayValue! {
            let bytes = Array(Data(base64Encoded: c["base64"]!.stringValue!)!)
            #expect(SHA256.hex(bytes: bytes) == c["sha256"]!.stringValue!)
        }
    }
}

/// The most requests inside a handler at once.
final class PeakCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var peak = 0
    private var now = 0
    func enter() { lock.lock(); now += 1; peak = max(peak, now); lock.unlock() }
    func leave() { lock.lock(); now -= 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return peak }
}
