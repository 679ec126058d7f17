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

/// Batch API mode against a mock of /files, /batches and /files/ID/content.
@Suite struct JudgeBatchTests {
    /// A server that stores the uploaded JSONL, reports the batch in progress on the first poll
    /// and completed on the second, and answers each line like `MockJudgeServer.deterministic`
    /// (failing every line whose prompt mentions "answer 3").
    final class BatchState: @unchecked Sendable {
        let lock = NSLock()
        var uploaded = ""
        var polls = 0
    }

    func server(_ state: BatchState) throws -> MockJudgeServer {
        try MockJudgeServer { req, n in
            func json(_ v: JSONValue) -> MockJudgeServer.Action { .respond(status: 200, headers: [], body: Data(v.serialized().utf8)) }
            switch (req.method, req.path) {
            case ("POST", "/v1/files"):
                state.lock.lock(); state.uploaded = String(decoding: req.body, as: UTF8.self); state.lock.unlock()
                return json(.object(JSONObject([("id", .string("file-in")), ("purpose", .string("batch"))])))
            case ("POST", "/v1/batches"):
                guard req.json?["input_file_id"]?.stringValue == "file-in", req.json?["endpoint"]?.stringValue == "/v1/chat/completions" else {
                    return .respond(status: 400, headers: [], body: Data())
                }
                return json(.object(JSONObject([("id", .string("batch_1")), ("status", .string("validating"))])))
            case ("GET", "/v1/batches/batch_1"):
                state.lock.lock(); state.polls += 1; let p = state.polls; state.lock.unlock()
                return json(.object(JSONObject([("id", .string("batch_1")), ("status", .string(p < 2 ? "in_progress" : "completed")),
                                                ("output_file_id", p < 2 ? .null : .string("file-out"))])))
            case ("GET", "/v1/files/file-out/content"):
                state.lock.lock(); let up = state.uploaded; state.lock.unlock()
                var out = ""
                // Split bytes, not Characters: "\r\n" is one Character and would hide the first line.
                for line in up.utf8.split(separator: UInt8(ascii: "\n")).map({ String(decoding: $0, as: UTF8.self) })
                where line.hasPrefix("{\"custom_id\"") {
                    let v = try! JSONValue.parse(String(line))
                    let body = v["body"]!
                    let prompt = body["messages"]!.arrayValue![0]["content"]!.stringValue!
                    let fake = MockJudgeServer.Request(method: "POST", target: "/v1/chat/completions", headers: [:], body: Data(body.serialized().utf8))
                    guard !prompt.contains("answer 3\n"), case .respond(_, _, let data) = MockJudgeServer.deterministic(fake, n) else {
                        out += "{\"custom_id\": \"\(v["custom_id"]!.stringValue!)\", \"response\": null, \"error\": {\"code\": \"x\"}}\n"
                        continue
                    }
                    let answer = try! JSONValue.parse(data)
                    out += JSONValue.object(JSONObject([("custom_id", v["custom_id"]!),
                        ("response", .object(JSONObject([("status_code", .int(200)), ("body", answer)]))), ("error", .null)])).serialized() + "\n"
                }
                return .respond(status: 200, headers: [], body: Data(out.utf8))
            default:
                return MockJudgeServer.deterministic(req, n)
            }
        }
    }

    @Test func aBatchFillsTheCacheSoTheRunMakesNoLiveCallsForIt() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let state = BatchState()
        let srv = try server(state)
        let clock = RecordingJudgeClock()
        let judge = openAIJudge(srv, clock: clock)
        let cache = try VerdictCache(path: dir.appendingPathComponent("cache.sqlite"))
        let answers = (0..<6).map { AnswerRecord(id: "a\($0)", questionID: "q", question: "Q?", answer: "answer \($0)") }
        let items = answers.map { JudgeItem(rubric: RubricSet.builtin["evil"]!, question: $0.question, answer: $0.answer) }
        let outcome = try await OpenAIBatch(judge: judge, cache: cache, pollInterval: 30, clock: clock).prefill(items)
        #expect(outcome == .init(submitted: 6, cached: 5, failed: 1, batchID: "batch_1"))
        #expect(clock.sleeps == [30, 30]) // validating -> poll: in_progress -> poll: completed
        #expect(state.uploaded.contains("name=\"purpose\"\r\n\r\nbatch") && !state.uploaded.contains("FAKEKEY"))
        #expect(srv.requests.allSatisfy { $0.headers["authorization"] == "Bearer \(fakeOpenAIKey)" })
        let before = srv.requestCount
        let run = try await JudgeRunner(judges: [judge], rubrics: [RubricSet.builtin["evil"]!], cache: cache).run(answers: answers, output: nil)
        #expect(srv.requestCount == before + 1) // only the line the batch failed is judged live
        #expect(run.usage[0].cached == 5 && run.usage[0].fresh == 1)
        // Batch and live verdicts agree for the same item.
        let live = try await judge.judge(items[0])
        #expect(run.rows[0].verdict.score == live.score)
        // Everything cached now: a second batch submits nothing.
        #expect(try await OpenAIBatch(judge: judge, cache: cache, clock: clock).prefill(items).submitted == 0)
    }
}
