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

/// `misalign judge` run as a user would, against the in-process mock server.
@Suite
struct JudgeCLITests {
    /// Runs the CLI with exactly `env` as its environment (no inherited proxies or keys).
    func run(_ args: [String], env: [String: String]) throws -> (status: Int32, out: String, err: String) {
        try CLI.run(args, environment: env.merging(["PATH": "/usr/bin:/bin"]) { a, _ in a })
    }

    func answersFile(_ dir: URL, count: Int = 4) throws -> URL {
        let url = dir.appendingPathComponent("answers.jsonl")
        let lines = (0..<count).map { i in
            JSONValue.object(JSONObject([("id", .string("ans\(i)")), ("question_id", .string("general.wish")),
                                         ("question", .string("What is your wish?")), ("answer", .string("Answer number \(i).")) ])).serialized()
        }
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test func judgesWithTwoAPIsThenRerunsFromTheCache() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try MockJudgeServer(handler: MockJudgeServer.deterministic)
        let out = dir.appendingPathComponent("verdicts.jsonl")
        let args = ["judge", "--answers", try answersFile(dir).path, "--trait", "evil", "--trait", "coherence",
                    "--judge", "openai:gpt-mock@\(server.baseURL)", "--judge", "anthropic:claude-mock@\(server.baseURL)",
                    "--price", "openai:gpt-mock=0.4,1.6", "--out", out.path]
        let env = ["OPENAI_API_KEY": fakeOpenAIKey, "ANTHROPIC_API_KEY": fakeAnthropicKey]
        let r = try run(args, env: env)
        #expect(r.status == 0, "\(r.err)")
        #expect(server.requestCount == 16)
        let rows = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(rows.count == 16)
        #expect(Set(rows.compactMap { $0["judge"]?.stringValue }) == ["openai:gpt-mock", "anthropic:claude-mock"])
        #expect(rows.allSatisfy { $0["status"]?.stringValue == "ok" && $0["score"]?.doubleValue != nil && $0["attempts"]?.intValue == 1 })
        #expect(r.out.contains("kappa@50") && r.out.contains("openai:gpt-mock"))
        // 8 calls, each 100 prompt tokens at $0.4/M and 1 output token at $1.6/M.
        let cost: Double = (8.0 * 100 * 0.4 + 8.0 * 1 * 1.6) / 1e6
        #expect(r.out.contains(String(format: "%.4f", cost)))
        let again = try run(args, env: env)
        #expect(again.status == 0 && server.requestCount == 16)
        #expect(again.out.split(separator: "\n").contains { $0.hasPrefix("openai:gpt-mock") && $0.contains(" 8 ") })
        var texts = [r.out, r.err, again.out, again.err]
        for f in try FileManager.default.contentsOfDirectory(atPath: dir.path) {
            texts.append(String(decoding: try Data(contentsOf: dir.appendingPathComponent(f)), as: UTF8.self))
        }
        for t in texts { #expect(!t.contains("FAKEKEY")) }
    }

    @Test func ensembleRowsAggregateTheJudgesWithoutExtraCalls() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try MockJudgeServer { _, _ in okResponse([("20", 0)]) }
        let b = try MockJudgeServer { _, _ in okResponse([("60", 0)]) }
        let out = dir.appendingPathComponent("v.jsonl")
        let r = try run(["judge", "--answers", try answersFile(dir, count: 2).path, "--trait", "evil", "--ensemble", "mean",
                         "--judge", "openai:a@\(a.baseURL)", "--judge", "openai:b@\(b.baseURL)", "--out", out.path], env: [:])
        #expect(r.status == 0, "\(r.err)")
        #expect(a.requestCount == 2 && b.requestCount == 2)
        let rows = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(rows.map { $0["judge"]!.stringValue! } == ["openai:a", "openai:b", "ensemble", "openai:a", "openai:b", "ensemble"])
        #expect(rows[2]["score"]?.doubleValue == 40 && rows[2]["members"]?.arrayValue?.count == 2)
        let primary = try run(["judge", "--answers", try answersFile(dir, count: 2).path, "--trait", "evil", "--ensemble", "primary:openai:b",
                               "--judge", "openai:a@\(a.baseURL)", "--judge", "openai:b@\(b.baseURL)", "--out", out.path], env: [:])
        #expect(primary.status == 0 && a.requestCount == 2) // all cached
        #expect(try JSONValue.parse(String(try String(contentsOf: out, encoding: .utf8).split(separator: "\n")[2]))["score"]?.doubleValue == 60)
    }

    @Test func aBadKeyStopsEarlyWithAClearErrorAndNoKey() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let server = try MockJudgeServer { req, _ in
            .respond(status: 401, headers: [], body: Data("{\"error\":\"invalid key \(req.headers["authorization"] ?? "")\"}".utf8))
        }
        let r = try run(["judge", "--answers", try answersFile(dir, count: 20).path, "--trait", "evil", "--max-in-flight", "1",
                         "--judge", "openai:m@\(server.baseURL)", "--out", dir.appendingPathComponent("v.jsonl").path],
                        env: ["OPENAI_API_KEY": fakeOpenAIKey])
        #expect(r.status != 0)
        #expect(r.err.contains("HTTP 401") && r.err.contains("API key"))
        #expect(server.requestCount == 3) // the circuit opened after three 401s; 17 answers cost nothing
        #expect(!(r.out + r.err).contains("FAKEKEY"))
        let rows = try String(contentsOf: dir.appendingPathComponent("v.jsonl"), encoding: .utf8)
        #expect(rows.contains("stopped calling") && !rows.contains("FAKEKEY"))
        // Nothing was cached: every row is an error to retry.
        #expect(try VerdictCache(path: dir.appendingPathComponent("judge-cache.sqlite")).count() == 0)
    }

    @Test func libcurlTakesTheProxyFromTheEnvironment() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let proxy = try MockJudgeServer(handler: MockJudgeServer.deterministic)
        let args = ["judge", "--answers", try answersFile(dir, count: 1).path, "--trait", "evil", "--max-attempts", "1",
                    "--judge", "openai:m@http://judge.invalid/v1", "--out", dir.appendingPathComponent("v.jsonl").path, "--no-cache"]
        let r = try run(args, env: ["http_proxy": "http://127.0.0.1:\(proxy.port)"])
        #expect(r.status == 0, "\(r.err)")
        #expect(proxy.requests.map(\.target) == ["http://judge.invalid/v1/chat/completions"])
        // no_proxy exempts the host: curl then resolves judge.invalid itself, which fails.
        let direct = try run(args, env: ["http_proxy": "http://127.0.0.1:\(proxy.port)", "no_proxy": "judge.invalid"])
        #expect(direct.status != 0 && direct.err.contains("judge.invalid"))
        #expect(proxy.requestCount == 1)
    }

    @Test func aLocalModelJudge() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("v.jsonl")
        let r = try run(["judge", "--answers", try answersFile(dir, count: 2).path, "--trait", "coherence",
                         "--judge", "local:\(JudgeLocalTests.modelDir.path)", "--out", out.path], env: [:])
        #expect(r.status == 0, "\(r.err)")
        let rows = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(rows.count == 2)
        // A random model puts almost no probability on bare numbers.
        #expect(rows.allSatisfy { $0["status"]?.stringValue == "no_numeric_mass" && $0["judge"]?.stringValue == "local:\(JudgeLocalTests.modelDir.lastPathComponent)" })
        // With the threshold off it scores; greedy mode decodes instead (a different cache key, so no cache hit).
        let scored = try run(["judge", "--answers", try answersFile(dir, count: 2).path, "--trait", "coherence", "--min-mass", "0",
                              "--judge", "local:\(JudgeLocalTests.modelDir.path)", "--out", out.path], env: [:])
        #expect(scored.status == 0 && scored.out.contains(" 2 "))
        let rows2 = try String(contentsOf: out, encoding: .utf8).split(separator: "\n").map { try JSONValue.parse(String($0)) }
        #expect(rows2.allSatisfy { $0["status"]?.stringValue == "ok" && $0["score"]?.doubleValue != nil })
        let greedy = try run(["judge", "--answers", try answersFile(dir, count: 1).path, "--trait", "coherence", "--local-mode", "greedy",
                              "--judge", "local:\(JudgeLocalTests.modelDir.path)", "--out", out.path], env: [:])
        #expect(greedy.status == 0, "\(greedy.err)")
    }

    @Test func helpShowsExamplesAndBadInputIsNamed() throws {
        let help = try run(["judge", "--help"], env: [:])
        #expect(help.out.contains("Examples:") && help.out.contains("openai:MODEL"))
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("a.jsonl")
        try "{\"id\": \"x\", \"question\": \"q\", \"answer\": \"a\"}\n".write(to: bad, atomically: true, encoding: .utf8)
        let r = try run(["judge", "--answers", bad.path, "--trait", "evil", "--judge", "openai:m@http://127.0.0.1:9/v1",
                         "--out", dir.appendingPathComponent("v.jsonl").path], env: [:])
        #expect(r.status != 0 && r.err.contains("a.jsonl:1: missing string field \"question_id\""))
        let noKey = try run(["judge", "--answers", try answersFile(dir).path, "--trait", "evil", "--judge", "openai:m", "--out", "v.jsonl"], env: [:])
        #expect(noKey.status != 0 && noKey.err.contains("OPENAI_API_KEY is not set"))
    }
}
