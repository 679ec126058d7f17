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

/// The progress meter's arithmetic and throttling, on a hand-driven clock.
@Suite struct ProgressMeterTests {
    @Test func throttlesRedrawsButAlwaysShowsTheEnd() {
        var m = ProgressMeter(label: "judged", total: 10, start: 0, redrawInterval: 0.1)
        // (done, now) -> redraw due?
        let script: [(Int, Double, Bool)] = [
            (0, 0, true),        // first state
            (1, 0.05, false),    // within 100 ms
            (2, 0.11, true),
            (3, 0.12, false),
            (10, 0.13, true),    // complete: shown at once
            (10, 0.5, false),    // ...but only once
        ]
        for (done, now, due) in script {
            let shown = m.update(done: done, now: now)
            #expect(shown == due, "done \(done) at \(now)")
        }
    }

    @Test func rateAndETACountOnlyWorkDoneInThisProcess() {
        // 40 of 100 were resumed from a partial file; 20 more took 4 s: 5/s, 40 left -> 8 s.
        var m = ProgressMeter(label: "judged", total: 100, start: 10)
        _ = m.update(done: 40, now: 10)
        _ = m.update(done: 60, now: 14)
        #expect(m.rate(now: 14) == 5)
        #expect(m.eta(now: 14) == 8)
        #expect(m.fraction == 0.6)
        #expect(m.line(now: 14) == "judged 60/100 (60%)  5.0/s  ETA 0m08s")
        #expect(m.bar(now: 14, width: 10, detail: "cached 3").hasPrefix("[######----] judged 60/100"))
        _ = m.update(done: 100, now: 18)
        #expect(m.line(now: 18) == "judged 100/100 (100%)  7.5/s  in 0m08s")  // 60 fresh in 8 s
    }

    @Test func formatsRatesAndDurations() {
        #expect(ProgressMeter.rate(42) == "42/s")
        #expect(ProgressMeter.rate(0.5) == "30.0/min")
        #expect(ProgressMeter.rate(1.0 / 7200) == "0.5/h")
        #expect(ProgressMeter.duration(3725) == "1h02m")
        #expect(ProgressMeter.duration(.infinity) == "?")
        var unknown = ProgressMeter(label: "lines", total: 0, start: 0)
        _ = unknown.update(done: 7, now: 1)
        #expect(unknown.fraction == nil && unknown.eta(now: 1) == nil && unknown.line(now: 1) == "lines 7")
    }
}

/// Exit statuses, `--json`, `--quiet` and progress lines, as scripts see them.
@Suite
struct CLIOutputTests {
    @Test func exitStatusesFollowTheDocumentedCodes() async throws {
        let help = try await cli(["--help"])
        #expect(help.status == 0 && help.out.contains("Exit status") && help.err.isEmpty)
        let usage = try await cli(["detect"])
        #expect(usage.status == 2 && usage.err.contains("exactly one of --scores"))
        let unknown = try await cli(["inspect", "x", "--no-such-flag"])
        #expect(unknown.status == 2)
        let badMethod = try await cli(["detect", "--series", Fixtures.url("changepoint/example_series.txt").path, "--method", "nope"])
        #expect(badMethod.status == 2 && badMethod.err.contains("unknown --method"))
        let missing = try await cli(["inspect", "/nonexistent/model"])
        #expect(missing.status == 1 && missing.err.contains("/nonexistent/model"))
        let tok = try await cli(["tokenize", "--tokenizer", Fixtures.url("tokenizer").path], stdin: "{\"text\": \"hi\"}\nnot json\n")
        #expect(tok.status == 1 && tok.out.contains("\"ids\"") && tok.err.contains("line 2"))
        // Subcommand help prints examples.
        for command in ["inspect", "tokenize", "detect", "judge", "report"] {
            let h = try await cli([command, "--help"])
            #expect(h.status == 0 && h.out.contains("Examples:") && h.out.contains("misalign \(command) "), "\(command)")
        }
    }

    @Test func progressGoesToStderrAsLinesAndQuietSilencesIt() async throws {
        let scores = Fixtures.url("changepoint/example_scores.jsonl").path
        let plain = try await cli(["detect", "--scores", scores, "--resamples", "50"])
        #expect(plain.status == 0 && plain.err.contains("bootstrap resamples 50/50 (100%)") && !plain.err.contains("\u{1B}"), "\(plain.err)")
        #expect(!plain.out.contains("bootstrap resamples 50/50"))
        let quiet = try await cli(["detect", "--scores", scores, "--resamples", "50", "--quiet", "--json"])
        #expect(quiet.status == 0 && quiet.err.isEmpty, "\(quiet.err)")
        #expect(try JSONValue.parse(quiet.out)["runs"]?.arrayValue?.count == 1)
    }

    @Test func reportPrintsItsPathAsJSON() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("r.md")
        let r = try await cli(["report", "--simulate", "--resamples", "10", "--format", "md", "--output", out.path, "--json", "-q"])
        #expect(r.status == 0 && r.err.isEmpty, "\(r.err)")
        let v = try JSONValue.parse(r.out.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(v["path"]?.stringValue == out.path && v["format"]?.stringValue == "md")
        #expect(FileManager.default.fileExists(atPath: out.path))
    }

    @Test func judgeLeavesFailedVerdictsForARerunWithStatus3() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let healthy = AtomicFlag()
        let server = try MockJudgeServer { request, n in
            healthy.value ? MockJudgeServer.deterministic(request, n) : .respond(status: 500, headers: [], body: Data("{}".utf8))
        }
        defer { server.stop() }
        let answers = dir.appendingPathComponent("a.jsonl")
        try (0..<3).map { #"{"id":"a\#($0)","question_id":"q","question":"Q?","answer":"A \#($0)."}"# }
            .joined(separator: "\n").write(to: answers, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("v.jsonl")
        let args = ["judge", "--answers", answers.path, "--trait", "evil", "--judge", "openai:m@\(server.baseURL)",
                    "--max-attempts", "1", "--out", out.path, "--json"]
        let failed = try await cli(args)
        #expect(failed.status == 3 && failed.err.contains("3 of 3 verdicts failed") && failed.err.contains("rerun"), "\(failed.err)")
        healthy.value = true
        let fixed = try await cli(args)
        #expect(fixed.status == 0, "\(fixed.err)")
        let summary = try JSONValue.parse(fixed.out.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(summary["rows"]?.intValue == 3 && summary["status"]?["ok"]?.intValue == 3 && summary["status"]?["error"]?.intValue == 0)
        #expect(summary["usage"]?.arrayValue?.first?["fresh"]?.intValue == 3)
        #expect(fixed.err.contains("judged 3/3"))
    }

    @Test func ctrlCExitsWith130() async throws {
        // `tokenize` waiting on a stdin that never ends: interrupted while idle, so the test
        // costs no CPU beside the rest of the suite.
        let tokenizer = Fixtures.url("tokenizer").path
        let (status, reason, err) = try await runOffPool { () throws -> (Int32, Process.TerminationReason, String) in
            let p = Process()
            p.executableURL = try CLI.binary
            p.arguments = ["tokenize", "--tokenizer", tokenizer]
            let input = Pipe(), err = Pipe()
            p.standardInput = input
            p.standardError = err
            p.standardOutput = Pipe()
            try p.run()
            input.fileHandleForWriting.write(Data("{\"text\": \"hi\"}\n".utf8))
            Thread.sleep(forTimeInterval: 1.5)
            kill(p.processIdentifier, SIGINT)
            // Never hang the suite: if SIGINT did nothing, kill it after 20 s (and fail below).
            let pid = p.processIdentifier
            DispatchQueue.global().asyncAfter(deadline: .now() + 20) { if p.isRunning { kill(pid, SIGKILL) } }
            let e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            try? input.fileHandleForWriting.close()
            return (p.terminationStatus, p.terminationReason, String(decoding: e, as: UTF8.self))
        }
        #expect(status == 130 && reason == .exit)
        #expect(err.contains("interrupted"))
    }
}

/// A flag the mock server's handler reads from its threads.
final class AtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = false
    var value: Bool {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
}
