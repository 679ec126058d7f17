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

/// A server's `Retry-After` is honoured up to a cap (60 s, or the request's timeout when
/// shorter), said out loud while waited on, and refused with a typed error beyond the cap:
/// `Retry-After: 100000` once meant a silent 600 s wait per attempt.
@Suite struct JudgeRetryAfterTests {
    final class Lines: @unchecked Sendable {
        private let lock = NSLock()
        private var all: [String] = []
        func add(_ s: String) { lock.lock(); all.append(s); lock.unlock() }
        var lines: [String] { lock.lock(); defer { lock.unlock() }; return all }
    }

    func judge(_ server: MockJudgeServer, clock: RecordingJudgeClock, lines: Lines, timeout: Double = 60, maxAttempts: Int = 4) -> OpenAIJudge {
        let client = ReliableClient(transport: CurlTransport(), policy: RetryPolicy(maxAttempts: maxAttempts), clock: clock,
                                    notice: { lines.add($0) })
        return OpenAIJudge(config: .init(model: "mock-judge", baseURL: server.baseURL, timeout: timeout, connectTimeout: 2), apiKey: nil, client: client)
    }

    @Test func aWaitBeyondTheCapIsATypedErrorNotASilentSleep() async throws {
        let server = try MockJudgeServer { _, _ in .respond(status: 429, headers: [("Retry-After", "100000")], body: Data("{}".utf8)) }
        let clock = RecordingJudgeClock(), lines = Lines()
        let url = server.baseURL + "/chat/completions"
        await #expect(throws: JudgeError.retryAfterTooLong(url: url, status: 429, seconds: 100000, cap: 60)) {
            _ = try await judge(server, clock: clock, lines: lines).judge(item())
        }
        #expect(clock.sleeps.isEmpty && server.requestCount == 1, "slept \(clock.sleeps) over \(server.requestCount) requests")
        let message = "\(JudgeError.retryAfterTooLong(url: url, status: 429, seconds: 100000, cap: 60))"
        #expect(message.contains("asks to wait 27.8 h before the next request (Retry-After), longer than the 60 s this run waits"))
        #expect(message.contains("rerun later (finished verdicts are kept)"))
    }

    @Test func theRequestTimeoutBoundsTheWaitToo() async throws {
        let server = try MockJudgeServer { _, n in
            n == 1 ? .respond(status: 503, headers: [("Retry-After", "30")], body: Data()) : okResponse()
        }
        let clock = RecordingJudgeClock(), lines = Lines()
        await #expect(throws: JudgeError.retryAfterTooLong(url: server.baseURL + "/chat/completions", status: 503, seconds: 30, cap: 10)) {
            _ = try await judge(server, clock: clock, lines: lines, timeout: 10).judge(item())
        }
        #expect(RetryPolicy().retryAfterCap(timeout: 10) == 10 && RetryPolicy().retryAfterCap(timeout: 600) == 60)
        // Within the cap the wait is honoured as asked.
        let ok = try MockJudgeServer { _, n in n == 1 ? .respond(status: 429, headers: [("Retry-After", "30")], body: Data()) : okResponse() }
        let v = try await judge(ok, clock: clock, lines: lines).judge(item())
        #expect(v.status == .ok && clock.sleeps == [30])
    }

    @Test func aWaitIsAnnouncedOncePerIntervalWithItsReason() async throws {
        let server = try MockJudgeServer { _, n in
            n <= 3 ? .respond(status: 429, headers: [("Retry-After", "2")], body: Data()) : okResponse()
        }
        let clock = RecordingJudgeClock(), lines = Lines()
        let v = try await judge(server, clock: clock, lines: lines, maxAttempts: 5).judge(item())
        #expect(v.status == .ok && clock.sleeps == [2, 2, 2])
        // Three waits of 2 s inside the 10 s interval: one line, naming status, URL, wait and attempt.
        #expect(lines.lines == ["HTTP 429 from \(server.baseURL)/chat/completions: the server asked to wait 2 s (Retry-After); retrying then (attempt 2 of 5)"])
    }
}

/// The same through `misalign judge`: the wait is shown on stderr, and a server asking for a
/// day ends the command at once with the reason (exit 3, verdicts kept for a rerun).
@Suite struct JudgeRetryAfterCLITests {
    @Test func judgeSaysItWaitsAndGivesUpOnAnAbsurdRetryAfter() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let answers = try JudgeCLITests().answersFile(dir, count: 1)
        let slow = try MockJudgeServer { _, n in
            n == 1 ? .respond(status: 429, headers: [("Retry-After", "1")], body: Data()) : okResponse()
        }
        let waited = try CLI.run(["judge", "--answers", answers.path, "--trait", "evil", "--judge", "openai:m@\(slow.baseURL)",
                                  "--out", dir.appendingPathComponent("a.jsonl").path], environment: ["PATH": "/usr/bin:/bin"])
        #expect(waited.status == 0, "\(waited.err)")
        #expect(waited.err.contains("HTTP 429 from \(slow.baseURL)/chat/completions: the server asked to wait 1 s (Retry-After); retrying then (attempt 2 of 6)"), "\(waited.err)")

        let never = try MockJudgeServer { _, _ in .respond(status: 429, headers: [("Retry-After", "100000")], body: Data()) }
        let t0 = Date()
        let r = try CLI.run(["judge", "--answers", answers.path, "--trait", "evil", "--judge", "openai:m@\(never.baseURL)",
                             "--out", dir.appendingPathComponent("b.jsonl").path], environment: ["PATH": "/usr/bin:/bin"])
        #expect(Date().timeIntervalSince(t0) < 30, "it waited on the server")
        #expect(r.status == 3, "\(r.err)")
        #expect(r.err.contains("asks to wait 27.8 h before the next request (Retry-After)"), "\(r.err)")
        #expect(never.requestCount == 1)
    }
}
