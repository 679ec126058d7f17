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

/// Ctrl-C during `misalign judge`: exit 130 (Docs/CLI.md), the verdicts finished so far kept
/// in OUT.partial and the cache, and a rerun asks only for the rest.
@Suite struct JudgeInterruptTests {
    /// Sends SIGINT to `misalign ARGS` once `ready()` holds; returns its status and stderr.
    static func interrupt(_ args: [String], when ready: @escaping @Sendable () -> Bool) async throws -> (Int32, Process.TerminationReason, String) {
        let binary = try CLI.binary
        return try await runOffPool { () throws -> (Int32, Process.TerminationReason, String) in
            let p = Process()
            p.executableURL = binary
            p.arguments = args
            p.environment = ["PATH": "/usr/bin:/bin"]
            let errPipe = Pipe()
            p.standardError = errPipe
            p.standardOutput = Pipe()
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let deadline = Date().addingTimeInterval(120)
            while !ready() && Date() < deadline && p.isRunning { Thread.sleep(forTimeInterval: 0.05) }
            kill(p.processIdentifier, SIGINT)
            // Never hang the suite: if SIGINT did nothing, kill it after 30 s (and fail).
            let pid = p.processIdentifier
            DispatchQueue.global().asyncAfter(deadline: .now() + 30) { if p.isRunning { kill(pid, SIGKILL) } }
            let e = errPipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, p.terminationReason, String(decoding: e, as: UTF8.self))
        }
    }

    @Test func ctrlCDuringARunsJudgeStageExits130() async throws {
        let f = try PipelineFixture("interrupt-run")
        let slow = try MockJudgeServer { req, n in
            if n > 2 { Thread.sleep(forTimeInterval: 0.3) }
            return .respond(status: 200, headers: [], body: PipelineFixture.judgeBody(for: req.prompt))
        }
        let config = try f.writeConfig(f.config(judgeURL: slow.baseURL).replacingOccurrences(of: "seeds: [0, 11]\n", with: "seeds: [0]\n"))
        let (status, reason, err) = try await Self.interrupt(["run", config.path]) { slow.requestCount >= 4 }
        #expect(reason == .exit && status == 130, "status \(status): \(err)")
        #expect(err.contains("interrupted during judge; finished work is kept"), "\(err)")
        let store = try RunStore(run: f.dir.appendingPathComponent("run"), create: false)
        #expect(try store.count("judgments") >= 2, "verdicts judged before Ctrl-C were kept")
    }

    @Test func ctrlCWhileJudgingExits130AndKeepsWhatIsDone() async throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let slow = AtomicFlag()
        slow.value = true
        let server = try MockJudgeServer { req, n in
            if slow.value && n > 3 { Thread.sleep(forTimeInterval: 0.3) }
            return MockJudgeServer.deterministic(req, n)
        }
        let answers = try JudgeCLITests().answersFile(dir, count: 40)
        let out = dir.appendingPathComponent("v.jsonl")
        let args = ["judge", "--answers", answers.path, "--trait", "evil", "--judge", "openai:m@\(server.baseURL)",
                    "--max-in-flight", "1", "--out", out.path]
        // Interrupt once a few verdicts are in and the slow ones are under way.
        let (status, reason, err) = try await Self.interrupt(args) { server.requestCount >= 6 }
        #expect(reason == .exit && status == 130, "status \(status): \(err)")
        #expect(err.contains("interrupted"), "\(err)")
        let partial = try String(contentsOfFile: out.path + ".partial", encoding: .utf8).split(separator: "\n")
        #expect(partial.count >= 3 && partial.count < 40, "\(partial.count) rows kept")
        #expect(!FileManager.default.fileExists(atPath: out.path), "no finished output after an interrupt")

        slow.value = false
        let asked = server.requestCount
        let rerun = try await cli(args)
        #expect(rerun.status == 0, "\(rerun.err)")
        #expect(try String(contentsOf: out, encoding: .utf8).split(separator: "\n").count == 40)
        #expect(server.requestCount - asked <= 40 - partial.count, "the rerun asked again for kept verdicts")
    }
}
