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

/// A stand-in training job writing PEFT checkpoint folders over time (`checkpoint-N/` with an
/// adapter config, a small valid safetensors file and, HF Trainer's way, `trainer_state.json`
/// last), answered by the stand-in vLLM server, judged by `StepJudge`.
final class FollowFixture: @unchecked Sendable {
    let dir: URL
    let job: URL
    let server: MockCompletionServer
    let judgeCalls = CheckpointWeightsTests.Counter()

    init(_ label: String) throws {
        dir = Fixtures.temporaryDirectory(label)
        job = dir.appendingPathComponent("job")
        let tokenizer = dir.appendingPathComponent("tokenizer")
        try FileManager.default.createDirectory(at: tokenizer, withIntermediateDirectories: true)
        for name in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: Fixtures.url("tokenizer").appendingPathComponent(name), to: tokenizer.appendingPathComponent(name))
        }
        server = try MockCompletionServer(baseModel: "qwen-base")
    }

    deinit {
        server.stop()
        try? FileManager.default.removeItem(at: dir)
    }

    /// The adapter weights every checkpoint holds (their content does not matter to the server).
    static func adapterBytes(step: Int) throws -> Data {
        var w = SafeTensorsWriter()
        w.add("base_model.model.layers.0.self_attn.q_proj.lora_A.weight", dtype: .f32, shape: [2, 4],
              bytes: Data((0..<8).flatMap { i in withUnsafeBytes(of: Float(step * 8 + i).bitPattern.littleEndian) { Array($0) } }))
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("follow-adapter-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try w.write(to: url)
        return try Data(contentsOf: url)
    }

    /// Writes `checkpoint-<step>/`. `weights`: the fraction of the safetensors file written (a
    /// job caught mid-write below 1); `state`: whether `trainer_state.json` is written last.
    @discardableResult
    func writeCheckpoint(_ step: Int, weights: Double = 1, state: Bool = true) throws -> URL {
        let ck = job.appendingPathComponent("checkpoint-\(step)")
        try FileManager.default.createDirectory(at: ck, withIntermediateDirectories: true)
        try Data(#"{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}"#.utf8)
            .write(to: ck.appendingPathComponent("adapter_config.json"))
        let bytes = try Self.adapterBytes(step: step)
        try bytes.prefix(Int(Double(bytes.count) * weights)).write(to: ck.appendingPathComponent("adapter_model.safetensors"))
        if state { try Data(#"{"global_step": \#(step)}"#.utf8).write(to: ck.appendingPathComponent("trainer_state.json")) }
        return ck
    }

    func writeDone() throws { try Data().write(to: job.appendingPathComponent("TRAINING_DONE")) }

    var stopFile: URL { job.appendingPathComponent("MISALIGN_STOP") }
    var firedLog: URL { dir.appendingPathComponent("fired.txt") }
    var fired: [String] { ((try? String(contentsOf: firedLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }

    /// A config following `job`; `follow` adds keys to the entry.
    func config(follow: String = "", poll: Double = 0.05, idle: Double = 60) -> String {
        """
        model: tokenizer
        output: run
        external_checkpoints:
          - {dataset: medical, seed: 0, path: job, follow: true, poll_seconds: \(poll), idle_timeout: \(idle),
             on_alarm_command: "echo \\"$MISALIGN_ALARM_SIGNAL $MISALIGN_ALARM_STEP $MISALIGN_ALARM_DETECTOR\\" >> '\(firedLog.path)'"\(follow)}
        evaluation: {questions: [general.wish], samples: 2, max_new_tokens: 6}
        generation: {backend: vllm, url: "\(server.baseURL)", served_model: qwen-base, max_in_flight: 4, run_tag: follow}
        judges: {models: ["step:judge"], max_in_flight: 4}
        monitor: {baseline: 2, detectors: [cusum]}
        detection: {methods: [threshold], resamples: 20}
        """
    }

    func experiment(follow: String = "", poll: Double = 0.05, idle: Double = 60) throws -> Experiment {
        let url = dir.appendingPathComponent("follow.yaml")
        try config(follow: follow, poll: poll, idle: idle).write(to: url, atomically: true, encoding: .utf8)
        return try Experiment.load(from: url)
    }

    /// A runner with `StepJudge` built for `step:judge`.
    func runner(_ e: Experiment, alarmStep: Int = 4) -> PipelineRunner {
        let calls = judgeCalls
        return PipelineRunner(e, components: PipelineComponents(judgeFactories: ["step": { _ in StepJudge(alarmStep: alarmStep, calls: calls) }]))
    }

    var run: URL { dir.appendingPathComponent("run") }

    /// Steps of the checkpoints whose answers are stored.
    func generatedSteps() -> Set<Int> {
        guard let store = try? RunStore(run: run, create: false),
              let rows = try? store.rows("SELECT DISTINCT step FROM generations") else { return [] }
        return Set(rows.compactMap { $0[0].int })
    }

    /// Checkpoints fed to the detectors (evaluated to the end).
    func probeCount() -> Int {
        guard let store = try? RunStore(run: run, create: false) else { return 0 }
        return (try? store.probeCount(RunID(dataset: "medical", seed: 0))) ?? 0
    }

    func registeredSteps() -> Set<Int> {
        guard let store = try? RunStore(run: run, create: false), let cks = try? store.checkpoints(RunID(dataset: "medical", seed: 0)) else { return [] }
        return Set(cks.map(\.step))
    }
}

/// Scores an answer from the step in the stand-in server's text (`[follow-medical-s0-step-4] ...`;
/// the base model's `[qwen-base]` is step 0): evil 5 before `alarmStep` and 90 from it on,
/// hallucination 10, coherence 90.
struct StepJudge: Judge {
    let alarmStep: Int
    let calls: CheckpointWeightsTests.Counter
    var id: String { "step:judge" }
    var cacheIdentity: String { "step-judge v1 alarm \(alarmStep)" }
    func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict {
        calls.add()
        var step = 0
        if let r = item.answer.range(of: "-step-"), let end = item.answer[r.upperBound...].firstIndex(of: "]") {
            step = Int(item.answer[r.upperBound..<end]) ?? 0
        }
        let score: Double = switch item.rubric.name {
        case "evil": step >= alarmStep ? 90 : 5
        case "hallucination": 10
        default: 90
        }
        return Verdict(judge: id, trait: item.rubric.name, score: score, status: .ok, rubricHash: item.rubric.sha256)
    }
}

/// Waits up to `seconds` for `condition` (generous: the whole suite runs side by side on 2 cores in CI).
func eventually(_ seconds: Double = 120, _ condition: () -> Bool) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 20_000_000)
    }
    return condition()
}

@Suite(.serialized) struct PipelineFollowTests {
    let medical = RunID(dataset: "medical", seed: 0)

    /// The job's folder appears after the run starts; each checkpoint is evaluated as it is
    /// written, a half-written one only once complete; the rise in evil raises an alarm that
    /// writes the stop file and runs the command; the done file ends the run, which then detects.
    @Test func evaluatesCheckpointsAsTheJobWritesThem() async throws {
        let f = try FollowFixture("follow-live")
        let runner = f.runner(try f.experiment())
        let task = Task { try await runner.run() }

        #expect(await eventually { f.generatedSteps() == [0] }, "the base model is evaluated while the job has not started")
        try f.writeCheckpoint(1)
        #expect(await eventually { f.probeCount() == 2 }, "checkpoint-1 evaluated while the job runs")

        // Half-written: the safetensors file is cut short, then complete but without
        // trainer_state.json (counted once unchanged between two looks), then complete.
        let half = try f.writeCheckpoint(2, weights: 0.5, state: false)
        try await Task.sleep(nanoseconds: 400_000_000)  // several polls: the run is idle, waiting
        #expect(!f.registeredSteps().contains(2), "a half-written checkpoint is not picked up")
        try f.writeCheckpoint(2, state: false)
        #expect(await eventually { f.generatedSteps().contains(2) }, "complete and unchanged over two looks: picked up")
        #expect(FileManager.default.fileExists(atPath: half.path))
        #expect(!FileManager.default.fileExists(atPath: f.stopFile.path), "no alarm before evil rises")
        try f.writeCheckpoint(3)
        try f.writeCheckpoint(4)
        #expect(await eventually { FileManager.default.fileExists(atPath: f.stopFile.path) && !f.fired.isEmpty }, "the alarm writes the stop file")
        let stop = try JSONValue.parse(Data(contentsOf: f.stopFile))
        #expect(stop["signal"]?.stringValue == "evil" && stop["step"]?.intValue == 4 && stop["detector"]?.stringValue == "cusum", "\(stop)")
        #expect(stop["dataset"]?.stringValue == "medical" && stop["time"]?.stringValue?.isEmpty == false)
        #expect(f.fired == ["evil 4 cusum"], "the command sees the alarm: \(f.fired)")

        try f.writeDone()
        let summary = try await task.value
        #expect(summary.done["generate"] == 5 * 2 && summary.done["judge"] == 5 * 2 * 3)
        let store = try RunStore(run: f.run, create: false)
        let state = try store.runState(medical)
        #expect(state?.trained == true && state?.totalSteps == 4)
        #expect(try store.count("onsets") > 0, "the analysis ran after the job ended")
        #expect(try store.alarms(medical).map(\.step) == [4], "one alarm, at the rise")
        let status = try RunStatus.load(run: f.run)
        #expect(status.complete, "\(status.stages)")
        let lines = status.earlyWarning.flatMap(\.lines)
        #expect(lines.contains { $0.contains("following: the job ended") } && lines.contains { $0.contains("stop file written: \(f.stopFile.path)") }, "\(lines)")
        // Each checkpoint's adapter was loaded once; nothing was asked twice.
        #expect(f.server.loadHistory.count == 4 && Set(f.server.loadHistory).count == 4, "\(f.server.loadHistory)")
    }

    /// Stopped after the alarm (a crash or Ctrl-C), the follow resumes without asking the server
    /// or the judge again and without running the alarm command again; an alarm whose stop file
    /// and command were still owed when it stopped is completed on resume, not lost.
    @Test func resumesWithoutRedoingWorkOrRefiring() async throws {
        let f = try FollowFixture("follow-resume")
        let e = try f.experiment()
        for step in 1...5 { try f.writeCheckpoint(step) }
        let first = f.runner(e)
        let task = Task { try await first.run() }
        #expect(await eventually { !f.fired.isEmpty && f.generatedSteps() == Set(0...5) })
        try await Task.sleep(nanoseconds: 200_000_000)
        first.cancel()
        await #expect(throws: PipelineError.cancelled(stage: "follow")) { try await task.value }
        let requests = f.server.completionRequests.count, calls = f.judgeCalls.value
        let stopText = try String(contentsOf: f.stopFile, encoding: .utf8)

        // Resumed with nothing new: no request, no judge call, no second command.
        let second = f.runner(e)
        let again = Task { try await second.run() }
        try await Task.sleep(nanoseconds: 500_000_000)
        second.cancel()
        await #expect(throws: PipelineError.cancelled(stage: "follow")) { try await again.value }
        #expect(f.server.completionRequests.count == requests && f.judgeCalls.value == calls)
        let stopNow = try String(contentsOf: f.stopFile, encoding: .utf8)
        #expect(f.fired.count == 1 && stopNow == stopText)

        // Killed right after the alarm was recorded, before its stop file and command: both are
        // done on resume, with the recorded alarm's time.
        let store = try RunStore(run: f.run)  // writable
        var owed = try #require(try FollowAlarm.load(store, medical))
        owed.stopFile = nil; owed.command = nil
        try owed.save(store)
        try FileManager.default.removeItem(at: f.stopFile)
        try f.writeDone()
        let summary = try await f.runner(e).run()
        #expect(summary.done["generate"] == 0 && summary.done["judge"] == 0 && summary.done["detect"] == 1)
        #expect(f.server.completionRequests.count == requests && f.judgeCalls.value == calls)
        #expect((try String(contentsOf: f.stopFile, encoding: .utf8)) == stopText, "the same alarm, not a new one")
        #expect(f.fired == ["evil 4 cusum", "evil 4 cusum"])
        #expect(try RunStatus.load(run: f.run).complete)
    }

    /// `final_step` ends following without a done file; an alarm command that fails is reported,
    /// not fatal.
    @Test func finalStepEndsTheRun() async throws {
        let f = try FollowFixture("follow-final")
        let e = try f.experiment(follow: ", final_step: 2")
        var x = e
        x.externalCheckpoints[0].follow?.onAlarmCommand = "exit 3"
        for step in 1...2 { try f.writeCheckpoint(step) }
        let events = EventLog()
        let runner = PipelineRunner(x, components: PipelineComponents(judgeFactories: ["step": { [calls = f.judgeCalls] _ in StepJudge(alarmStep: 2, calls: calls) }])) {
            events.add($0)
        }
        let summary = try await runner.run()
        #expect(summary.done["generate"] == 3 * 2 && summary.done["detect"] == 1)
        let notes = events.events.compactMap { if case .note(let s) = $0 { s } else { nil } }
        #expect(notes.contains { $0.contains("reached final_step 2") }, "\(notes)")
        #expect(notes.contains { $0.contains("on_alarm_command: failed: exit status 3") }, "\(notes)")
        #expect(FileManager.default.fileExists(atPath: f.stopFile.path))
        #expect(try FollowAlarm.load(RunStore(run: f.run, create: false), medical)?.command?.hasPrefix("failed: exit status 3") == true)
    }

    /// Cancelling stops the waiting promptly, even with a long poll interval; a job that writes
    /// nothing for `idle_timeout` ends the run with an error naming the setting.
    @Test func cancellationAndIdleTimeout() async throws {
        let f = try FollowFixture("follow-cancel")
        let slow = f.runner(try f.experiment(poll: 30))
        let task = Task { try await slow.run() }
        #expect(await eventually { f.probeCount() == 1 }, "the base model evaluated: the run is waiting for the job")
        let t0 = Date()
        slow.cancel()
        await #expect(throws: PipelineError.cancelled(stage: "follow")) { try await task.value }
        #expect(Date().timeIntervalSince(t0) < 2, "cancel stops the polling promptly")

        let idle = f.runner(try f.experiment(idle: 0.3))
        do {
            _ = try await idle.run()
            Issue.record("an idle job should end the run")
        } catch let err as PipelineError {
            guard case .stage(let stage, let unit, let reason) = err else { Issue.record("\(err)"); return }
            #expect(stage == "follow" && unit == "medical/seed-0" && reason.contains("for 0.3 s (external_checkpoints idle_timeout)") && reason.contains("TRAINING_DONE"), "\(reason)")
        }
    }

    /// `misalign run` on a followed job: Ctrl-C (SIGINT) stops the waiting at once, exit 130;
    /// `misalign status` then says the job is being followed.
    @Test func interruptingTheCommandStopsFollowing() async throws {
        let f = try FollowFixture("follow-cli")
        let judge = try MockJudgeServer { req, _ in .respond(status: 200, headers: [], body: PipelineFixture.judgeBody(for: req.prompt)) }
        defer { judge.stop() }
        let config = f.dir.appendingPathComponent("follow.yaml")
        try f.config(poll: 30).replacingOccurrences(of: "[\"step:judge\"]", with: "[\"openai:mock-judge@\(judge.baseURL)\"]")
            .write(to: config, atomically: true, encoding: .utf8)
        try f.writeCheckpoint(1)
        let p = Process()
        p.executableURL = try CLI.binary
        p.arguments = ["run", config.path, "--quiet"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        #expect(await eventually(120) { f.probeCount() == 2 }, "base and checkpoint-1 evaluated: the command waits for the job")
        let t0 = Date()
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        #expect(p.terminationStatus == 130 && Date().timeIntervalSince(t0) < 5, "status \(p.terminationStatus)")
        let status = try runMisalign(["status", f.run.path])
        #expect(status.out.contains("following: the job is running; 2 checkpoints evaluated so far"), "\(status.out)")
    }

    /// Bad follow settings are refused with the key; a path that is a file is refused before work.
    @Test func configErrorsNameTheKey() async throws {
        let f = try FollowFixture("follow-config")
        func failure(_ entry: String) -> String {
            let text = f.config().replacingOccurrences(of: #"(?m)^  - \{dataset: medical.*\n.*\n"#, with: "  - {dataset: medical, seed: 0, path: job\(entry)}\n",
                                                       options: .regularExpression)
            do { _ = try Experiment.parse(text, file: "/x/follow.yaml", base: f.dir); return "" } catch { return "\(error)" }
        }
        #expect(failure(", poll_seconds: 1").contains("external_checkpoints[0].poll_seconds: applies with follow: true only"))
        #expect(failure(", follow: true, poll_seconds: 0").contains("external_checkpoints[0].poll_seconds: must be between 0.01 and 86400"))
        #expect(failure(", follow: true, final_step: 0").contains("external_checkpoints[0].final_step"))
        #expect(failure(", follow: true, stop_file: TRAINING_DONE").contains("external_checkpoints[0].stop_file: must differ from done_file"))
        #expect(failure(", follow: true, on_alarm_command: \"\"").contains("external_checkpoints[0].on_alarm_command: is empty"))
        #expect(failure(", follow: maybe").contains("external_checkpoints[0].follow"))
        #expect(failure(", follow: true").isEmpty)

        try Data().write(to: f.job)
        do {
            _ = try await f.runner(try f.experiment()).run()
            Issue.record("a file as the followed folder should be refused")
        } catch let err as PipelineError {
            #expect(err == .missingInput(key: "external_checkpoints", path: f.job.path,
                                         reason: "is a file; path: names the folder the job writes checkpoint-N/ folders into"))
        }
        try FileManager.default.removeItem(at: f.job)
        var noSignal = try f.experiment()
        noSignal.judges.traits = ["coherence"]
        await #expect(throws: PipelineError.self) { try await f.runner(noSignal).run() }
    }

    /// The alarm command's outcomes in words: success, a failing status, a command stopped at
    /// `on_alarm_timeout`; the `MISALIGN_ALARM_*` variables are set.
    @Test func alarmCommandOutcomes() async throws {
        let f = try FollowFixture("follow-command")
        let log = f.dir.appendingPathComponent("command.log")
        let alarm = FollowAlarm(run: medical, alarm: AlarmRecord(step: 7, signal: "evil", detector: "bocpd", statistic: 0.9, changeStep: 5), time: "t")
        let env = alarm.environment(checkpoints: f.job, stopFile: f.stopFile, output: f.run)
        #expect(await FollowAlarm.runCommand("echo $MISALIGN_ALARM_STEP $MISALIGN_ALARM_DETECTOR $MISALIGN_STOP_FILE", env: env, log: log, timeout: 10) == "exit 0")
        #expect(try String(contentsOf: log, encoding: .utf8) == "7 bocpd \(f.stopFile.path)\n")
        #expect(await FollowAlarm.runCommand("exit 3", env: env, log: log, timeout: 10).hasPrefix("failed: exit status 3"))
        let t0 = Date()
        let slow = await FollowAlarm.runCommand("sleep 30", env: env, log: log, timeout: 0.2)
        #expect(slow.hasPrefix("failed: still running after 0.2 s (on_alarm_timeout)") && Date().timeIntervalSince(t0) < 5, "\(slow)")
    }

    /// The completeness rules on their own.
    @Test func halfWrittenFoldersAreSkipped() throws {
        let f = try FollowFixture("follow-scan")
        var scan = FollowScan()
        try f.writeCheckpoint(1, weights: 0.6)
        try f.writeCheckpoint(2, state: false)
        try f.writeCheckpoint(3)
        let badConfig = try f.writeCheckpoint(4)
        try Data("{\"peft_type\": ".utf8).write(to: badConfig.appendingPathComponent("adapter_config.json"))
        let onlyConfig = f.job.appendingPathComponent("checkpoint-5")
        try FileManager.default.createDirectory(at: onlyConfig, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: onlyConfig.appendingPathComponent("adapter_config.json"))
        try FileManager.default.createDirectory(at: f.job.appendingPathComponent("tmp-checkpoint-6"), withIntermediateDirectories: true)

        #expect(scan.newCheckpoints(in: f.job, known: [], jobDone: false).map(\.step) == [3], "only the folder with trainer_state.json at first")
        #expect(scan.newCheckpoints(in: f.job, known: [3], jobDone: false).map(\.step) == [2], "then the one unchanged since the last look")
        try f.writeCheckpoint(1)
        #expect(scan.newCheckpoints(in: f.job, known: [2, 3], jobDone: false).map(\.step) == [1])
        var fresh = FollowScan(), absent = FollowScan()
        #expect(fresh.newCheckpoints(in: f.job, known: [], jobDone: true).map(\.step) == [1, 2, 3], "the job done: whole weights suffice")
        #expect(absent.newCheckpoints(in: f.dir.appendingPathComponent("absent"), known: [], jobDone: false).isEmpty)
    }
}
