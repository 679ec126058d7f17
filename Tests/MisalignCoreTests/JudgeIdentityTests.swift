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

/// One server spelled two ways is one judge: the cache key, the run store's judge names and
/// the notes about a changed judge all go through `JudgeIdentity`.
@Suite struct JudgeIdentityTests {
    @Test func respelledURLsAreOneServer() {
        let canonical = "http://127.0.0.1:8000/v1"
        for s in ["http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://LOCALHOST:8000/v1/", "HTTP://127.0.0.1:8000/v1//",
                  "http://localhost.:8000/v1", " http://localhost:8000/v1 "] {
            #expect(JudgeIdentity.canonicalURL(s) == canonical, "\(s)")
        }
        #expect(JudgeIdentity.canonicalURL("https://API.OpenAI.com:443/v1/") == "https://api.openai.com/v1")
        #expect(JudgeIdentity.canonicalURL("http://Example.com:80/v1") == "http://example.com/v1")
        #expect(JudgeIdentity.canonicalURL("http://user:secret@host:8000/v1") == "http://host:8000/v1", "credentials are no identity and never printed")
        // Different servers stay different: port, path (case-sensitive), scheme, the IPv6 loopback.
        for s in ["http://127.0.0.1:8001/v1", "http://127.0.0.1:8000/V1", "https://127.0.0.1:8000/v1", "http://[::1]:8000/v1"] {
            #expect(JudgeIdentity.canonicalURL(s) != canonical, "\(s)")
        }
        #expect(JudgeSpec.canonicalName("openai:qwen@http://LOCALHOST:8000/v1/") == "openai:qwen@\(canonical)")
        #expect(JudgeSpec.canonicalName("local:/models/a@http/") == "local:/models/a@http", "a local path is not a URL; trailing slashes go")
        #expect(JudgeSpec.canonicalName("local:/") == "local:/")
    }

    @Test func theCacheKeyIgnoresTheSpellingButNotTheServer() throws {
        func key(_ url: String, model: String = "m") -> String {
            let client = ReliableClient(transport: CurlTransport())
            return VerdictCache.key(judge: OpenAIJudge(config: .init(model: model, baseURL: url), apiKey: nil, client: client), item: item())
        }
        #expect(key("http://127.0.0.1:8000/v1") == key("http://localhost:8000/v1/"))
        #expect(key("http://127.0.0.1:8000/v1") == key("http://LocalHost:8000/v1"))
        #expect(key("http://127.0.0.1:8000/v1") != key("http://127.0.0.1:8001/v1"))
        let client = ReliableClient(transport: CurlTransport())
        let a = AnthropicJudge(config: .init(model: "c", baseURL: "https://api.anthropic.com/v1"), apiKey: nil, client: client)
        let b = AnthropicJudge(config: .init(model: "c", baseURL: "HTTPS://api.anthropic.com:443/v1/"), apiKey: nil, client: client)
        #expect(a.cacheIdentity == b.cacheIdentity)
    }

    @Test func aChangedJudgeSaysExactlyWhatChanged() throws {
        let old = try JudgeSpec(parsing: "openai:qwen@http://127.0.0.1:8000/v1")
        #expect(try JudgeSpec(parsing: "openai:qwen@http://localhost:8000/v1/").changes(from: old).isEmpty)
        #expect(try JudgeSpec(parsing: "openai:qwen@http://10.0.0.2:8000/v1").changes(from: old) == ["host 127.0.0.1 -> 10.0.0.2"])
        #expect(try JudgeSpec(parsing: "openai:qwen@http://127.0.0.1:8001/v2").changes(from: old) == ["port 8000 -> 8001", "path /v1 -> /v2"])
        #expect(try JudgeSpec(parsing: "openai:qwen-72b@http://127.0.0.1:8000/v1").changes(from: old) == ["model qwen -> qwen-72b"])
        #expect(try JudgeSpec(parsing: "openai:qwen").changes(from: old) == ["base URL http://127.0.0.1:8000/v1 -> the API's default"])
        let client = ReliableClient(transport: CurlTransport())
        let a = OpenAIJudge(config: .init(model: "m", baseURL: "http://127.0.0.1:8000/v1"), apiKey: nil, client: client)
        let b = OpenAIJudge(config: .init(model: "m", baseURL: "http://10.0.0.2:8000/v1", minNumericMass: 0.5), apiKey: nil, client: client)
        #expect(JudgeIdentity.changes(from: a.cacheIdentity, to: b.cacheIdentity) == ["host 127.0.0.1 -> 10.0.0.2", "min_mass=0.25 -> min_mass=0.5"])
    }

    @Test func theRunnerReusesARespelledServerAndNamesAChangedOne() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try MockJudgeServer(handler: MockJudgeServer.deterministic)
        let cacheURL = dir.appendingPathComponent("cache.sqlite")
        let answers = (0..<4).map { AnswerRecord(id: "a\($0)", questionID: "q", question: "Q?", answer: "answer \($0)") }
        func judge(_ url: String, minMass: Double = 0.25) -> OpenAIJudge {
            OpenAIJudge(config: .init(model: "mock-judge", baseURL: url, minNumericMass: minMass, timeout: 5, connectTimeout: 2),
                        apiKey: nil, client: ReliableClient(transport: CurlTransport(), policy: RetryPolicy(maxAttempts: 1)))
        }
        let rubric = [RubricSet.builtin["evil"]!]
        _ = try await JudgeRunner(judges: [judge(server.baseURL)], rubrics: rubric, cache: try VerdictCache(path: cacheURL)).run(answers: answers, output: nil)
        #expect(server.requestCount == 4)

        let respelled = server.baseURL.replacingOccurrences(of: "127.0.0.1", with: "LOCALHOST") + "/"
        let again = JudgeRunner(judges: [judge(respelled)], rubrics: rubric, cache: try VerdictCache(path: cacheURL))
        #expect(try again.identityNotes().isEmpty)
        let summary = try await again.run(answers: answers, output: nil)
        #expect(summary.usage[0].cached == 4 && server.requestCount == 4, "a respelled URL asked every verdict again")

        let changed = JudgeRunner(judges: [judge(server.baseURL, minMass: 0.5)], rubrics: rubric, cache: try VerdictCache(path: cacheURL))
        let notes = try changed.identityNotes()
        #expect(notes.count == 1)
        #expect(notes.first?.contains("judge openai:mock-judge: the cache holds 4 verdicts of this judge with other settings (min_mass=0.25 -> min_mass=0.5)") == true, "\(notes)")
    }
}

/// In a run folder: verdicts are stored under the judge's canonical name, so respelling its URL
/// asks nothing again, an older store's spelling is carried over, and a really different judge
/// is named with what changed (not "aggregation settings").
@Suite struct PipelineJudgeIdentityTests {
    @Test func aRespelledJudgeURLAsksNothingAgainAndAChangedOneSaysWhat() async throws {
        let f = try PipelineFixture("judge-identity")
        func config(_ url: String? = nil) -> String {
            f.config(judgeURL: url).replacingOccurrences(of: "seeds: [0, 11]\n", with: "seeds: [0]\n")
        }
        let e = try Experiment.load(from: f.writeConfig(config()))
        try await PipelineRunner(e).run()
        let asked = f.server.requestCount
        #expect(asked > 0)
        let canonical = "openai:mock-judge@\(f.server.baseURL)"

        // localhost for 127.0.0.1, with a trailing slash: the same judge (pricing follows it).
        let respelled = f.server.baseURL.replacingOccurrences(of: "127.0.0.1", with: "localhost") + "/"
        let events = EventLog()
        let again = try await PipelineRunner(try Experiment.load(from: f.writeConfig(config(respelled)))) { events.add($0) }.run()
        #expect(again.nothingToDo && f.server.requestCount == asked, "a respelled judge URL asked verdicts again")
        let notes = events.events.compactMap { if case .note(let n) = $0 { return n } else { return nil } }
        #expect(!notes.contains { $0.contains("settings changed") || $0.contains("judges.models") }, "\(notes)")

        // A store written before names were canonical keeps its verdicts under the old spelling.
        let store = try RunStore(run: e.output)  // a writer: the test rewrites rows
        let total = try store.count("judgments")
        _ = try store.rows("UPDATE judgments SET judge = ?1", [.text("openai:mock-judge@\(respelled)")])
        let migrated = try await PipelineRunner(e).run()
        #expect(migrated.done["judge"] == 0 && f.server.requestCount == asked)
        #expect(try store.count("judgments", where: "judge = ?1", [.text(canonical)]) == total)

        // Another server: the note names the judge and the part of the URL that changed.
        let elsewhere = "http://127.0.0.1:1/v1"
        let changedEvents = EventLog()
        await #expect(throws: PipelineError.self) {
            try await PipelineRunner(try Experiment.load(from: f.writeConfig(config(elsewhere)))) { changedEvents.add($0) }.run()
        }
        let changed = changedEvents.events.compactMap { if case .note(let n) = $0 { return n } else { return nil } }
        let port = f.server.baseURL.split(separator: ":").last!.split(separator: "/").first!
        #expect(changed.contains("judges.models: `\(canonical)` is now `openai:mock-judge@\(elsewhere)` (port \(port) -> 1): a different judge, so its verdicts are asked afresh; `\(canonical)`'s stay in the store"), "\(changed)")
        #expect(changed.contains { $0.hasPrefix("detection settings changed (judge: \(canonical) -> openai:mock-judge@\(elsewhere))") }, "\(changed)")
        #expect(!changed.contains { $0.contains("aggregation") }, "\(changed)")
    }
}
