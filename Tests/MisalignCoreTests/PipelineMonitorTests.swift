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

/// `monitor:` in `misalign run`: probes during training go to a judge whose scores rise at
/// chosen steps (hallucination at 4, evil at 6); with `stop_on_alarm` training stops at evil's
/// alarm, the rest of the pipeline runs on the checkpoints that exist, and the store records
/// probes and alarms. A run killed at several points (one between a probe's file record and
/// its store commit) resumes to the same alarms without judging any probe twice.
@Suite(.serialized) struct PipelineMonitorTests {
    /// 2 probe questions x 2 samples x 2 signals: 8 judge calls per probe, one probe per step.
    static let callsPerProbe = 8

    /// A judge for the probes; request n belongs to the ((n-1)/8 mod 6 + 1)-th step of a run
    /// (each of the two runs probes steps 1-6, then stops), which holds only when no probe is
    /// judged twice.
    static func monitorJudge() throws -> MockJudgeServer {
        try MockJudgeServer(handler: risingJudge(rise: ["hallucination": 4, "evil": 6]) { _, n in (n - 1) / callsPerProbe % 6 + 1 })
    }

    static func config(_ f: PipelineFixture, output: String, monitor: MockJudgeServer) -> String {
        f.config(output: output, extra: """
            monitor:
              enabled: true
              every_k: 1
              questions: [hallucination.treaty-valdora, general.wish]
              samples: 2
              max_new_tokens: 6
              baseline: 3
              judge: "openai:mock-probe@\(monitor.baseURL)"
              stop_on_alarm: true
            """).replacingOccurrences(of: "seeds: [0, 11]", with: "seeds: [0]").replacingOccurrences(of: "max_steps: 6", with: "max_steps: 10")
    }

    static func records(_ run: URL) throws -> (probes: [String], alarms: [String]) {
        let store = try RunStore(run: run, create: false)
        let probes = try store.rows("SELECT dataset, seed, step, signal, mean, scored, answers FROM probes ORDER BY dataset, seed, step, signal")
        let alarms = try store.rows("SELECT * FROM alarms ORDER BY dataset, seed, signal, detector")
        return (probes.map { $0.map(\.description).joined(separator: "|") }, alarms.map { $0.map(\.description).joined(separator: "|") })
    }

    @Test func stopsAtEvilsAlarmAndTheRestOfThePipelineRuns() async throws {
        let f = try PipelineFixture("pipeline-monitor")
        let judge = try Self.monitorJudge()
        let e = try Experiment.load(from: f.writeConfig(Self.config(f, output: "run", monitor: judge)))
        let summary = try await PipelineRunner(e).run()
        let run = f.dir.appendingPathComponent("run")
        let store = try RunStore(run: run, create: false)
        #expect(summary.done["train"] == 2 * 6 && judge.requestCount == 2 * 6 * Self.callsPerProbe)
        for r in e.runs {
            #expect(try store.checkpoints(r).map(\.step) == [0, 2, 4, 6], "training stopped at the alarm with checkpoint-6 kept")
            #expect(try store.runState(r)?.totalSteps == 6 && store.runState(r)?.trained == true)
            let cusum = try store.alarms(r).filter { $0.detector == "cusum" }
            #expect(cusum.map(\.signal) == ["hallucination", "evil"] && cusum.map(\.step) == [4, 6], "\(cusum)")
            // The JSONL mirror holds what the store holds.
            let log = try EarlyWarningLog(run: PipelineRunner.checkpointFolder(run, r))
            #expect(try log.readProbes().map(\.signals) == store.probes(r).map(\.signals))
            #expect(try Set(log.readAlarms().map { "\($0)" }) == Set(store.alarms(r).map { "\($0)" }))
        }
        #expect(summary.earlyWarning.count == 2 && summary.earlyWarning.allSatisfy { $0.warningSteps == 2 && $0.stoppedAt == 6 })
        #expect(summary.earlyWarning[0].lines.contains("  hallucination gave 2 steps of warning before evil's alarm"))
        let status = try RunStatus.load(run: run)
        #expect(status.complete && status.earlyWarning == summary.earlyWarning)
        #expect(try store.count("generations") == 2 * 4 * 2 * 2, "generate ran on every checkpoint that exists")
        let exported = try String(contentsOf: run.appendingPathComponent("exports/alarms.csv"), encoding: .utf8)
        #expect(exported.hasPrefix("dataset,seed,signal,detector,step,statistic,change_step") && exported.contains("medical,0,evil,cusum,6,"))

        // A second call neither trains nor probes.
        let again = try await PipelineRunner(e).run()
        #expect(again.nothingToDo && judge.requestCount == 2 * 6 * Self.callsPerProbe)
    }

    @Test func badMonitorSettingsFailBeforeAnyWork() throws {
        let f = try PipelineFixture("pipeline-monitor-config")
        func failure(_ monitor: String) -> String {
            do { _ = try Experiment.load(from: f.writeConfig(f.config(extra: "monitor: \(monitor)"))); return "" } catch { return "\(error)" }
        }
        #expect(failure("{enabled: true, judge: \"nope\"}").contains("monitor.judge"))
        // `nope:x` is a judge of a custom scheme: with no factory registered for `nope`, the
        // runner refuses it before any work.
        let custom = try Experiment.load(from: f.writeConfig(f.config(extra: "monitor: {enabled: true, judge: \"nope:x\"}")))
        #expect { try PipelineRunner(custom).checkComponents() } throws: { error in
            guard case PipelineError.config(_, "monitor.judge", _, let reason) = error else { return false }
            return reason.contains("PipelineComponents.judgeFactories[\"nope\"]")
        }
        #expect(failure("{enabled: true, stop_signals: [coherence]}").contains("monitor.stop_signals"))
        #expect(failure("{enabled: true, baseline: 1}").contains("monitor.baseline"))
        let unknown = try Experiment.load(from: f.writeConfig(f.config(extra: "monitor: {enabled: true, questions: [no.such]}")))
        #expect(throws: PipelineError.self) { try unknown.monitor.earlyWarning(unknown) }
    }
}

@Suite
struct PipelineMonitorKillTests {
    @Test func killedRunsResumeToTheSameAlarmsWithoutJudgingAProbeTwice() async throws {
        let f = try PipelineFixture("pipeline-monitor-kill")
        let referenceJudge = try PipelineMonitorTests.monitorJudge()
        let reference = try Experiment.load(from: f.writeConfig(PipelineMonitorTests.config(f, output: "reference", monitor: referenceJudge), name: "ref.yaml"))
        _ = try await PipelineRunner(reference).run()

        let judge = try PipelineMonitorTests.monitorJudge()
        let config = try f.writeConfig(PipelineMonitorTests.config(f, output: "killed", monitor: judge), name: "killed.yaml")
        // probe:N kills after the N-th probe reached the monitor's file but not the store.
        for point in ["probe:3", "train:4", "probe:6", "train:3", "generate:2"] {
            let r = try runMisalign(["run", config.path, "--quiet"], env: ["MISALIGN_TEST_KILL_AT": point])
            #expect(r.signaled && r.status == SIGKILL, "expected a kill at \(point): \(r.status) \(r.err)")
        }
        let last = try runMisalign(["run", config.path])
        #expect(last.status == 0, "\(last.err)")
        #expect(last.out.contains("hallucination gave 2 steps of warning before evil's alarm"), "\(last.out)")
        #expect(judge.requestCount == referenceJudge.requestCount, "no probe was judged twice")
        let a = try PipelineMonitorTests.records(f.dir.appendingPathComponent("killed"))
        let b = try PipelineMonitorTests.records(f.dir.appendingPathComponent("reference"))
        #expect(a.probes == b.probes && !b.probes.isEmpty)
        #expect(a.alarms == b.alarms && !b.alarms.isEmpty)
        let status = try runMisalign(["status", f.dir.appendingPathComponent("killed").path])
        #expect(status.out.contains("complete") && status.out.contains("training stopped at the alarm at step 6"), "\(status.out)")
    }
}
