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

/// A generator whose answers say which probe step, question and sample they belong to.
struct StepEchoGenerator: Generator {
    let step: Int
    func generate(_ requests: [GenerationRequest], onToken: (@Sendable (TokenEvent) -> Void)?) async throws -> [Completion] {
        requests.indices.flatMap { i in
            (0..<requests[i].samples).map { s in
                Completion(request: i, sample: s, tokens: [1], text: "step=\(step) q=\(i) sample=\(s)", finishReason: .stop, promptTokens: 1)
            }
        }
    }
}

/// A judge that reads the step back from the answer and scores from a script.
struct ScriptedJudge: Judge {
    let script: @Sendable (_ trait: String, _ step: Int, _ question: Int, _ sample: Int) -> Double?
    var down = false
    var id: String { "scripted" }
    var cacheIdentity: String { "scripted|v1" }
    func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict {
        let fields = Dictionary(uniqueKeysWithValues: item.answer.split(separator: " ").map { p -> (String, Int) in
            let kv = p.split(separator: "="); return (String(kv[0]), Int(kv[1])!)
        })
        if down { throw .connection(url: "scripted", reason: "judge down") }
        guard let score = script(item.rubric.name, fields["step"]!, fields["q"]!, fields["sample"]!) else {
            return Verdict(judge: id, trait: item.rubric.name, score: nil, status: .refusal, rubricHash: item.rubric.sha256)
        }
        return Verdict(judge: id, trait: item.rubric.name, score: score, status: .ok, rubricHash: item.rubric.sha256)
    }
}

/// Hallucination steps up at 9, evil at 14; small deterministic noise per answer.
let scripted: @Sendable (String, Int, Int, Int) -> Double? = { trait, step, q, s in
    let rise = trait == "hallucination" ? 9 : 14
    let noise = Double((step * 7 + q * 3 + s * 5) % 5) - 2
    return (step >= rise ? 55 : 10) + noise
}

func monitorSettings(every: Int = 1) -> EarlyWarningSettings {
    var s = EarlyWarningSettings()
    s.every = every; s.questions = EarlyWarningSettings.probeQuestions(2); s.samples = 2; s.maxNewTokens = 4
    s.baseline = 4; s.bocpdWindow = 3; s.bocpdConfirm = 1
    return s
}

let probeTokenizer = try! BPETokenizer(directory: Fixtures.url("tokenizer"))

@Suite struct EarlyWarningMonitorTests {
    func monitor(_ run: URL, _ settings: EarlyWarningSettings, resume: Int = 0, calls: StepLog = StepLog(),
                 judge: any Judge = ScriptedJudge(script: scripted)) throws -> EarlyWarningMonitor {
        try EarlyWarningMonitor(run: run, settings: settings, judge: judge, tokenizer: probeTokenizer, resumingAt: resume,
                                source: { step in calls.add(step); return StepEchoGenerator(step: step) })
    }

    @Test func alarmsMatchTheDetectorsRunByHand() async throws {
        let run = Fixtures.temporaryDirectory("ew"); defer { try? FileManager.default.removeItem(at: run) }
        let settings = monitorSettings()
        let m = try monitor(run, settings)
        for step in 1...20 { try await m.observe(step: step) }
        for signal in ["hallucination", "evil"] {
            // The per-step means, computed here from the script.
            let means = (1...20).map { step in
                let xs = (0..<2).flatMap { q in (0..<2).map { s in scripted(signal, step, q, s)! } }
                return xs.reduce(0, +) / Double(xs.count)
            }
            #expect(m.probes.map { $0.mean(signal)! } == means)
            var cusum = Cusum(drift: 0.5, threshold: 5, sides: .upper, baseline: 4, minSD: 1)
            let byHand = zip(1...20, means).lazy.compactMap { cusum.update($1, step: $0) }.first!
            let got = m.alarms.first { $0.signal == signal && $0.detector == "cusum" }!
            #expect(got.step == byHand.step && got.changeStep == byHand.changeStep && got.statistic == byHand.statistic)
            // The offline rule over the whole curve puts the onset at the same checkpoint.
            let index = try CusumRule(baseline: 4, minSD: 1, robustSD: false).onset(means, direction: .up, series: signal)
            #expect(index.map { $0 + 1 } == got.changeStep)
            var bocpd = Bocpd(prior: NormalGammaPrior.fromBaseline(Array(means[0..<4]), minVar: 1), window: 3, direction: .up, confirm: 1)
            let bocpdByHand = zip(1...20, means).lazy.compactMap { bocpd.update($1, step: $0) }.first!
            let gotB = m.alarms.first { $0.signal == signal && $0.detector == "bocpd" }!
            #expect(gotB.step == bocpdByHand.step && gotB.changeStep == bocpdByHand.changeStep)
        }
        #expect(m.firstAlarm == ["hallucination": 9, "evil": 14] && m.warningSteps == 5)
        #expect(m.summary().contains("hallucination gave 5 steps of warning before evil's alarm"))
        let onDisk = try EarlyWarningLog(run: run)
        #expect(try onDisk.readAlarms() == m.alarms)
        #expect(try onDisk.readProbes() == m.probes)
    }

    @Test func aResumedMonitorReplaysAndReusesItsRecords() async throws {
        let a = Fixtures.temporaryDirectory("ew"), b = Fixtures.temporaryDirectory("ew")
        defer { try? FileManager.default.removeItem(at: a); try? FileManager.default.removeItem(at: b) }
        let settings = monitorSettings(every: 1)
        let straight = try monitor(a, settings)
        for step in 1...20 { try await straight.observe(step: step) }
        // Killed after probing step 15; the trainer's last checkpoint was step 10.
        let first = try monitor(b, settings)
        for step in 1...15 { try await first.observe(step: step) }
        let calls = StepLog()
        let resumed = try monitor(b, settings, resume: 10, calls: calls)
        #expect(resumed.probes.count == 10 && resumed.alarms == straight.alarms.filter { $0.step <= 10 })
        for step in 11...20 { try await resumed.observe(step: step) }
        #expect(calls.steps == Array(16...20), "steps 11-15 reuse their records")
        #expect(resumed.alarms == straight.alarms && resumed.probes.map(\.signals) == straight.probes.map(\.signals))
        // Other settings are refused rather than mixed in.
        var other = settings; other.samples = 3
        #expect(throws: EarlyWarningError.self) { try monitor(b, other, resume: 20) }
    }

    @Test func stopOnAlarmAndUnscoredProbesAndJudgeFailures() async throws {
        let run = Fixtures.temporaryDirectory("ew"); defer { try? FileManager.default.removeItem(at: run) }
        var settings = monitorSettings(every: 2)
        settings.stopOnAlarm = true
        let m = try monitor(run, settings)
        var controls: [Int: TrainerControl] = [:]
        for step in 1...16 {
            let metrics = StepMetrics(step: step, totalSteps: 16, epoch: 0, loss: 1, lr: 0, gradNorm: 0, tokens: 1, targetTokens: 1, seconds: 0)
            let c = try await runOffPool { try m.onStep(metrics) }
            controls[step] = c
            if c == .stop { break }
        }
        #expect(m.probes.map(\.step) == [2, 4, 6, 8, 10, 12, 14] && controls[14] == .stop && m.stopStep == 14)
        #expect(controls.filter { $0.value == .stop }.count == 1)
        #expect(try monitor(run, settings, resume: 14).alreadyStopped)

        // Refusals only: no mean, the detectors skip the probe.
        let quiet = Fixtures.temporaryDirectory("ew"); defer { try? FileManager.default.removeItem(at: quiet) }
        let refusing = try monitor(quiet, monitorSettings(), judge: ScriptedJudge(script: { _, _, _, _ in nil }))
        try await refusing.observe(step: 1)
        #expect(refusing.probes[0].mean("evil") == nil && refusing.probes[0].signals[0].scored == 0 && refusing.alarms.isEmpty)
        // A judge that is down fails the probe with the step named, and records nothing.
        let down = try monitor(quiet, monitorSettings(), resume: 1, judge: ScriptedJudge(script: scripted, down: true))
        await #expect { try await down.observe(step: 3) } throws: { e in
            guard case .probeFailed(3, let reason) = e as? EarlyWarningError else { return false }
            return reason.contains("judge down")
        }
        #expect(try EarlyWarningLog(run: quiet).readProbes().map(\.step) == [1])
        #expect(throws: EarlyWarningError.self) { var s = monitorSettings(); s.stopSignals = ["coherence"]; try s.validate() }
    }
}

final class StepLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Int] = []
    func add(_ s: Int) { lock.withLock { list.append(s) } }
    var steps: [Int] { lock.withLock { list } }
}
