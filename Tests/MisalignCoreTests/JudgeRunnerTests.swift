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

/// Sweeps through `JudgeRunner`: caching, resumption, what must never be cached or leaked.
@Suite struct JudgeRunnerTests {
    func answers(_ n: Int, bad: Set<Int> = []) -> [AnswerRecord] {
        (0..<n).map { i in
            AnswerRecord(id: "a\(i)", questionID: "q\(i % 3)", question: "Question \(i % 3)?", answer: bad.contains(i) ? "bad answer \(i)" : "answer \(i)")
        }
    }

    func rubrics(_ names: String...) -> [Rubric] { names.map { RubricSet.builtin[$0]! } }

    @Test func aCachedRerunMakesNoRequests() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try MockJudgeServer(handler: MockJudgeServer.deterministic)
        let cache = try VerdictCache(path: dir.appendingPathComponent("cache.sqlite"))
        let out = dir.appendingPathComponent("v.jsonl")
        let first = try await JudgeRunner(judges: [openAIJudge(server)], rubrics: rubrics("evil", "coherence"), cache: cache)
            .run(answers: answers(10), output: out)
        #expect(server.requestCount == 20 && first.usage[0].fresh == 20)
        #expect(try cache.count() == 20)
        #expect(!FileManager.default.fileExists(atPath: out.path + ".partial"))
        // A second process-like run: new judge objects, reopened cache.
        let again = try await JudgeRunner(judges: [openAIJudge(server)], rubrics: rubrics("evil", "coherence"),
                                          cache: try VerdictCache(path: dir.appendingPathComponent("cache.sqlite")))
            .run(answers: answers(10), output: out)
        #expect(server.requestCount == 20)
        #expect(again.usage[0].cached == 20 && again.usage[0].fresh == 0)
        #expect(again.rows.map(\.verdict.score) == first.rows.map(\.verdict.score))
        let lines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 20)
        let row = try JSONValue.parse(String(lines[1]))
        #expect(row["answer_id"]?.stringValue == "a0" && row["trait"]?.stringValue == "coherence")
        #expect(row["judge"]?.stringValue == "openai:mock-judge" && row["status"]?.stringValue == "ok" && row["cached"]?.boolValue == true)
        // A different rubric text or model is a different key.
        let other = try await JudgeRunner(judges: [openAIJudge(server, model: "other")], rubrics: rubrics("evil"), cache: cache)
            .run(answers: answers(2), output: nil)
        #expect(other.usage[0].fresh == 2 && server.requestCount == 22)
    }

    @Test func errorsAreNotCachedAndAreRetriedOnTheNextRun() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let broken = Flag()
        let server = try MockJudgeServer { req, n in
            if broken.isSet && req.prompt.contains("bad answer") { return .respond(status: 503, headers: [], body: Data()) }
            if req.prompt.contains("answer 1\n") { return okResponse([("Hmm", 0)]) } // a no_numeric_mass verdict
            return MockJudgeServer.deterministic(req, n)
        }
        broken.set(true)
        let cache = try VerdictCache(path: dir.appendingPathComponent("cache.sqlite"))
        let out = dir.appendingPathComponent("v.jsonl")
        let runner = JudgeRunner(judges: [openAIJudge(server, maxAttempts: 2)], rubrics: rubrics("evil"), cache: cache)
        let first = try await runner.run(answers: answers(6, bad: [2, 4]), output: out)
        #expect(first.rows.filter { $0.verdict.status == .error }.map(\.answerID) == ["a2", "a4"])
        #expect(first.rows.first { $0.answerID == "a2" }!.verdict.attempts == 2)
        #expect(first.rows.first { $0.answerID == "a1" }!.verdict.status == .noNumericMass)
        #expect(server.requestCount == 4 + 2 * 2)
        #expect(try cache.count() == 4) // the no_numeric_mass verdict is a verdict; the errors are not
        // The partial file stays while errors remain; the rerun asks only for the failures.
        #expect(FileManager.default.fileExists(atPath: out.path + ".partial"))
        broken.set(false)
        let second = try await runner.run(answers: answers(6, bad: [2, 4]), output: out)
        #expect(server.requestCount == 8 + 2)
        #expect(second.rows.allSatisfy { $0.verdict.status != .error })
        #expect(second.usage[0].fresh == 2 && second.usage[0].resumed == 4)
    }

    @Test func anInterruptedRunResumesFromThePartialFile() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try MockJudgeServer(handler: MockJudgeServer.deterministic)
        let out = dir.appendingPathComponent("v.jsonl")
        let runner = JudgeRunner(judges: [openAIJudge(server)], rubrics: rubrics("evil"), cache: nil)
        let full = try await runner.run(answers: answers(8), output: out)
        // Simulate a crash after 5 rows, the last one torn mid-write.
        let lines = try String(contentsOf: out, encoding: .utf8).split(separator: "\n")
        try (lines[0..<5].joined(separator: "\n") + "\n" + lines[5].prefix(30)).write(
            to: URL(fileURLWithPath: out.path + ".partial"), atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(at: out)
        let resumed = try await runner.run(answers: answers(8), output: out)
        #expect(server.requestCount == 8 + 3)
        #expect(resumed.usage[0].resumed == 5 && resumed.usage[0].fresh == 3)
        #expect(resumed.rows.map(\.verdict.score) == full.rows.map(\.verdict.score))
        #expect(try String(contentsOf: out, encoding: .utf8).split(separator: "\n").count == 8)
    }

    @Test func theKeyAppearsNowhere() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A careless server: echoes the Authorization header in answers and in a 401 body.
        let server = try MockJudgeServer { req, n in
            let auth = req.headers["authorization"] ?? ""
            if req.prompt.contains("answer 0\n") {
                return .respond(status: 401, headers: [], body: Data("{\"error\": \"bad key \(auth)\"}".utf8))
            }
            if req.prompt.contains("answer 1\n") {
                return .respond(status: 200, headers: [], body: MockJudgeServer.openAIBody(content: "I saw \(auth)", top: nil))
            }
            if req.prompt.contains("answer 2\n") { return .respond(status: 500, headers: [], body: Data("trace: \(auth)".utf8)) }
            return MockJudgeServer.deterministic(req, n)
        }
        let factory = JudgeFactory(policy: RetryPolicy(maxAttempts: 2, baseDelay: 0.001), environment: ["OPENAI_API_KEY": fakeOpenAIKey])
        let judge = try factory.make(JudgeSpec(parsing: "openai:mock@\(server.baseURL)"))
        let out = dir.appendingPathComponent("v.jsonl")
        let cache = try VerdictCache(path: dir.appendingPathComponent("cache.sqlite"))
        let summary = try await JudgeRunner(judges: [judge], rubrics: rubrics("evil", "hallucination"), cache: cache,
                                            secrets: factory.secrets).run(answers: answers(5), output: out)
        #expect(server.requests.allSatisfy { $0.headers["authorization"] == "Bearer \(fakeOpenAIKey)" })
        #expect(summary.rows.contains { $0.verdict.status == .error }) // the 401 and the 500s
        #expect(summary.rows.contains { $0.verdict.raw.contains("[redacted]") })
        var texts = summary.rows.map { $0.json().serialized() }
        texts.append(JudgeReport.formatUsage(summary.usage))
        for f in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            texts.append(String(decoding: try Data(contentsOf: dir.appendingPathComponent(f)), as: UTF8.self))
        }
        #expect(texts.count >= 5) // rows, usage, output, partial, cache (+ WAL)
        for t in texts { #expect(!t.contains(fakeOpenAIKey)); #expect(!t.contains("FAKEKEY")) }
    }

    @Test func ensembleKeepsEveryMember() async throws {
        let a = try MockJudgeServer { _, _ in okResponse([("20", 0)]) }
        let b = try MockJudgeServer { _, _ in okResponse([("40", 0)]) }
        let c = try MockJudgeServer { _, _ in okResponse([("90", 0)]) }
        let members: [any Judge] = [openAIJudge(a, model: "a"), openAIJudge(b, model: "b"), openAIJudge(c, model: "c")]
        let mean = try await EnsembleJudge(members: members).judge(item())
        #expect(mean.score == 50 && mean.members.map(\.score) == [20, 40, 90] && mean.attempts == 3)
        #expect(try await EnsembleJudge(members: members, aggregation: .median).judge(item()).score == 40)
        #expect(try await EnsembleJudge(members: members, aggregation: .primary("openai:c")).judge(item()).score == 90)
        let json = mean.json()
        #expect(try Verdict(json: json) == mean)
    }

    @Test func agreementTableFromRows() async throws {
        let a = try MockJudgeServer(handler: MockJudgeServer.deterministic)
        let b = try MockJudgeServer(handler: MockJudgeServer.deterministic)
        let s = try await JudgeRunner(judges: [openAIJudge(a, model: "x"), openAIJudge(b, model: "y")], rubrics: rubrics("evil"), cache: nil)
            .run(answers: answers(12), output: nil)
        let table = JudgeReport.agreement(rows: s.rows, traits: ["evil"], judges: ["openai:x", "openai:y"])
        #expect(table.count == 1 && table[0].stats.n == 12)
        // Same deterministic server: identical scores, perfect agreement.
        #expect(abs(table[0].stats.pearson! - 1) < 1e-12 && table[0].stats.meanAbsoluteDifference == 0)
        #expect(JudgeReport.formatAgreement(table).contains("openai:x"))
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var v = false
    func set(_ x: Bool) { lock.lock(); v = x; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return v }
}
