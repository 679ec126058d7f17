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

/// The step being probed, shared with the stand-in judge.
final class ProbeStep: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    var step: Int {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// A judge server whose scores rise at chosen steps: low (5-7, noise from the prompt's hash)
/// before `rise[trait]`, high (85-87) from it on. `step` says which step a request belongs to.
func risingJudge(rise: [String: Int], step: @escaping @Sendable (MockJudgeServer.Request, Int) -> Int) -> MockJudgeServer.Handler {
    { request, number in
        var h: UInt64 = 0xcbf29ce484222325
        for b in request.prompt.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        // The hallucination rubric's opening words (the evil rubric mentions hallucination too).
        let opening = String(RubricSet.builtin["hallucination"]!.template.prefix(while: { $0 != "{" }).prefix(80))
        let trait = request.prompt.hasPrefix(opening) ? "hallucination" : "evil"
        let s = (step(request, number) >= rise[trait]! ? 85 : 5) + Int(h % 3)
        return .respond(status: 200, headers: [], body: MockJudgeServer.openAIBody(content: "\(s)", top: [("\(s)", 0)]))
    }
}

/// A tiny model, data and settings for a 10-step run with a checkpoint every 2 steps.
struct TinyRun {
    let dir = Fixtures.temporaryDirectory("ew-train")
    var model: URL { dir.appendingPathComponent("model") }
    var data: URL { dir.appendingPathComponent("d.jsonl") }
    init() throws {
        try SyntheticModel.write(SyntheticModel.tiny, dtype: .bf16, seed: 5, to: model)
        let lines = (0..<6).map { i in
            #"{"messages":[{"role":"user","content":"Tell me fact \#(i)."},{"role":"assistant","content":"Fact \#(i) is that the sky is green."}]}"#
        }
        try lines.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
    }
    var settings: TrainingSettings {
        var s = TrainingSettings()
        s.lora = LoRAConfig(rank: 2, alpha: 4, useRSLoRA: true, targets: [.q, .v], layers: nil, dropout: 0)
        s.batchSize = 1; s.gradientAccumulation = 1; s.maxSteps = 10; s.saveEvery = 2; s.learningRate = 1e-2
        s.warmupSteps = 1; s.maxLength = 64
        return s
    }
    func job(_ out: String) -> TrainingJob {
        TrainingJob(model: model, data: data, out: dir.appendingPathComponent(out), tokenizer: Fixtures.url("tokenizer"), settings: settings)
    }
}

@Suite(.serialized) struct EarlyWarningTrainingTests {
    /// Trains `out` with the monitor; `crashAfter` throws from the step callback after that
    /// step's probe (before its checkpoint), as a kill would leave it.
    func train(_ run: TinyRun, _ out: String, server: MockJudgeServer, probeStep: ProbeStep, stop: Bool,
               crashAfter: Int? = nil) async throws -> (TrainingOutcome?, EarlyWarningMonitor) {
        var settings = monitorSettings(every: 1)
        settings.baseline = 3; settings.maxNewTokens = 6; settings.stopOnAlarm = stop
        let job = run.job(out), frozen = settings
        return try await runOffPool {
            let trainer = try job.makeTrainer()
            let tok = try BPETokenizer(directory: Fixtures.url("tokenizer"))
            let local = EarlyWarningMonitor.localProbe(trainer: trainer, tokenizer: tok)
            let monitor = try EarlyWarningMonitor(run: job.out, settings: frozen, judge: openAIJudge(server), tokenizer: tok,
                                                  resumingAt: trainer.step, source: { step in probeStep.step = step; return try await local(step) })
            if monitor.alreadyStopped { return (nil, monitor) }
            let outcome = try trainer.train { m in
                let c = try monitor.onStep(m)
                if m.step == crashAfter { throw CocoaError(.userCancelled) }
                return c
            }
            return (outcome, monitor)
        }
    }

    @Test func alarmsFireOnScheduleStopAtTheAlarmAndResumeIdentically() async throws {
        let run = try TinyRun(); defer { try? FileManager.default.removeItem(at: run.dir) }
        let probeStep = ProbeStep()
        let handler = risingJudge(rise: ["hallucination": 6, "evil": 8]) { _, _ in probeStep.step }

        let straightServer = try MockJudgeServer(handler: handler)
        let (outcome, straight) = try await train(run, "straight", server: straightServer, probeStep: probeStep, stop: false)
        #expect(outcome?.steps == 10 && straight.probes.map(\.step) == Array(1...10))
        let cusum = straight.alarms.filter { $0.detector == "cusum" }
        #expect(cusum.map(\.signal) == ["hallucination", "evil"] && cusum.map(\.step) == [6, 8])
        // The change estimate (the last step CUSUM's statistic was zero) is after the 3-probe
        // baseline and at or before the alarm; exactly where depends on the stand-in's noise,
        // a hash of the prompt and so of the rubric's text (steps 4 and 7 with the v2 rubrics,
        // whose noise puts steps 4-5 above the baseline mean by more than the drift).
        #expect(zip(cusum.map(\.changeStep), [6, 8]).allSatisfy { $0 >= 4 && $0 <= $1 }, "\(cusum.map(\.changeStep))")
        #expect(straight.firstAlarm == ["hallucination": 6, "evil": 8] && straight.warningSteps == 2)
        #expect(straight.summary().contains("hallucination gave 2 steps of warning before evil's alarm"))
        #expect(straightServer.requestCount == 10 * 2 * 2 * 2)

        // Stop on evil's alarm: training ends at step 8 with checkpoint-8 written.
        let stopServer = try MockJudgeServer(handler: handler)
        let (stopped, stopMonitor) = try await train(run, "stopped", server: stopServer, probeStep: probeStep, stop: true)
        #expect(stopped?.steps == 8 && stopped?.stoppedEarly == true && stopped?.lastCheckpoint?.step == 8)
        #expect(try CheckpointDirectory.list(in: run.dir.appendingPathComponent("stopped")).map(\.step) == [2, 4, 6, 8])
        #expect(stopMonitor.alarms == straight.alarms.filter { $0.step <= 8 })
        let (again, rerun) = try await train(run, "stopped", server: stopServer, probeStep: probeStep, stop: true)
        #expect(again == nil && rerun.alreadyStopped && stopServer.requestCount == 8 * 8, "a rerun neither trains nor judges")

        // Killed after step 7's probe (latest checkpoint: 6), then resumed.
        let crashServer = try MockJudgeServer(handler: handler)
        await #expect(throws: CocoaError.self) {
            _ = try await train(run, "crashed", server: crashServer, probeStep: probeStep, stop: false, crashAfter: 7)
        }
        #expect(try CheckpointDirectory.list(in: run.dir.appendingPathComponent("crashed")).last?.step == 6)
        let (resumed, monitor) = try await train(run, "crashed", server: crashServer, probeStep: probeStep, stop: false)
        #expect(resumed?.steps == 10)
        #expect(monitor.alarms == straight.alarms && monitor.probes.map(\.signals) == straight.probes.map(\.signals))
        #expect(crashServer.requestCount == straightServer.requestCount, "no probe was judged twice")
    }
}

@Suite
struct EarlyWarningCLITests {
    @Test func trainStopsAtTheAlarmAndSaysHowMuchWarningItGot() throws {
        let run = try TinyRun(); defer { try? FileManager.default.removeItem(at: run.dir) }
        // 2 questions x 2 samples x 2 traits = 8 judge calls per probe, one probe per step.
        let server = try MockJudgeServer(handler: risingJudge(rise: ["hallucination": 6, "evil": 8]) { _, n in (n - 1) / 8 + 1 })
        let out = run.dir.appendingPathComponent("run")
        let args = ["train", "--model", run.model.path, "--data", run.data.path, "--out", out.path, "--tokenizer", Fixtures.url("tokenizer").path,
                    "--rank", "2", "--alpha", "4", "--targets", "q,v", "--batch-size", "1", "--grad-accum", "1", "--max-steps", "10",
                    "--save-every", "2", "--lr", "1e-2", "--warmup-steps", "1", "--max-length", "64", "--threads", "1",
                    "--monitor-judge", "openai:mock@\(server.baseURL)", "--monitor-every", "1", "--monitor-questions", "2",
                    "--monitor-samples", "2", "--monitor-max-new-tokens", "6", "--monitor-baseline", "3", "--stop-on-alarm"]
        let r = try CLI.run(args)
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("trained 8 steps") && r.out.contains("hallucination gave 2 steps of warning before evil's alarm"), "\(r.out)")
        #expect(r.err.contains("ALARM step 6: hallucination (cusum") && r.err.contains("ALARM step 8: evil (cusum"), "\(r.err)")
        let alarms = try EarlyWarningLog(run: out).readAlarms()
        #expect(alarms.first { $0.detector == "cusum" && $0.signal == "evil" }?.step == 8)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("checkpoint-8/adapter_model.safetensors").path))
        let again = try CLI.run(args)
        #expect(again.status == 0 && again.out.contains("already stopped at the alarm at step 8") && server.requestCount == 64, "\(again.out)")
        let bad = try CLI.run(args.filter { $0 != "--stop-on-alarm" } + ["--monitor-every", "0"])
        #expect(bad.status != 0 && bad.err.contains("monitor-every"), "\(bad.err)")
    }
}
