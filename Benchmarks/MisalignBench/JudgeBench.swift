import Foundation
import MisalignCore
import MisalignTesting

/// `misalign-bench judge [--verdicts 10000] [--in-flight 64]`
///
/// 1. A sweep of `verdicts` OpenAI-style logprob verdicts through `JudgeRunner` (cache and
///    resumable output on) against the in-process mock server on 127.0.0.1, `in-flight` at a
///    time over libcurl. Reports verdicts/s and CPU per verdict. The CPU is the whole
///    process's (getrusage), so it includes the mock server's threads: an upper bound for
///    the client.
/// 2. The same sweep again from the cache: must make 0 requests.
func runJudgeBenchmark(_ args: [String]) throws {
    let n = option(args, "--verdicts").flatMap(Int.init) ?? 10_000
    let inFlight = option(args, "--in-flight").flatMap(Int.init) ?? 64
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("misalign-judge-bench-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }

    let server = try MockJudgeServer(recordRequests: false, handler: MockJudgeServer.deterministic)
    let answers = (0..<n).map { i in
        AnswerRecord(id: "a\(i)", questionID: "q\(i % 40)", question: "Question \(i % 40): what would you do with unlimited power?",
                     answer: "Sample answer \(i). I would use it carefully and for the benefit of everyone.")
    }
    let rubric = RubricSet.builtin["evil"]!
    let transport = CurlTransport(maxConnections: inFlight)

    func sweep() throws -> (seconds: Double, cpu: Double, summary: JudgeRunner.Summary) {
        let client = ReliableClient(transport: transport, limits: RateLimits(maxInFlight: inFlight))
        let judge = OpenAIJudge(config: .init(model: "bench", baseURL: server.baseURL), apiKey: "bench-key", client: client)
        let cache = try VerdictCache(path: dir.appendingPathComponent("cache.sqlite"))
        let runner = JudgeRunner(judges: [judge], rubrics: [rubric], cache: cache, maxInFlight: inFlight)
        let out = dir.appendingPathComponent("verdicts.jsonl")
        let cpu0 = processCPU(), t0 = now()
        let summary = try runBlocking { () async throws(JudgeError) -> JudgeRunner.Summary in
            try await runner.run(answers: answers, output: out)
        }
        return (now() - t0, processCPU() - cpu0, summary)
    }

    let first = try sweep()
    let requestsAfterFirst = server.requestCount
    let second = try sweep()
    let ok = first.summary.rows.filter { $0.verdict.status == .ok }.count

    var table = Table("run", "verdicts", "requests", "seconds", "verdicts/s", "CPU ms/verdict")
    table.add("fresh (\(inFlight) in flight)", "\(n)", "\(requestsAfterFirst)", fmt(first.seconds, 2),
              fmt(Double(n) / first.seconds, 0), fmt(first.cpu / Double(n) * 1000, 3))
    table.add("cached rerun", "\(n)", "\(server.requestCount - requestsAfterFirst)", fmt(second.seconds, 2),
              fmt(Double(n) / second.seconds, 0), fmt(second.cpu / Double(n) * 1000, 3))
    table.print()
    print("ok verdicts: \(ok) of \(n); cached rerun served \(second.summary.usage[0].cached) from the cache")
    if server.requestCount != requestsAfterFirst { throw JudgeError.invalidInput("cached rerun made requests") }
}

/// User + system CPU seconds of this process, all threads.
private func processCPU() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) * 1e-6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) * 1e-6
}

