import Foundation
import MisalignIO

/// One run's early-warning record as the store holds it: probes taken, first alarms, the
/// warning hallucination gave before evil, and where training stopped at an alarm.
public struct EarlyWarningStatus: Sendable, Equatable {
    public var run: RunID
    public var probes: Int
    /// The run's first alarms, by step.
    public var alarms: [AlarmRecord]
    /// The step at which training stopped at an alarm (`stop_on_alarm`), if it did.
    public var stoppedAt: Int?
    /// A followed job's state (`external_checkpoints` with `follow: true`), nil for other runs.
    public var following: String? = nil
    /// The stop file written at a followed run's alarm, and the alarm command's outcome.
    public var stopFile: String? = nil
    public var alarmCommand: String? = nil

    /// Each signal's first alarm step (the earliest over its detectors).
    public var firstAlarm: [String: Int] { alarms.firstAlarm }

    /// Steps from hallucination's first alarm to evil's (positive: hallucination warned first).
    public var warningSteps: Int? { alarms.warningSteps }

    /// Readable lines for `misalign run` and `misalign status`.
    public var lines: [String] {
        var head = "\(run): \(probes) probes, \(alarms.count) alarms"
        let first = firstAlarm
        if !first.isEmpty { head += " (" + first.sorted { $0.value < $1.value }.map { "\($0.key) at step \($0.value)" }.joined(separator: ", ") + ")" }
        var out = [head]
        if let w = warningSteps {
            out.append(w >= 0 ? "  hallucination gave \(w) steps of warning before evil's alarm"
                              : "  evil's alarm came \(-w) steps before hallucination's: no warning")
        } else if first["evil"] != nil || first[ActivationSettings.signal("evil")] != nil {
            out.append("  evil alarmed with no hallucination alarm before it: no warning")
        }
        if let s = stoppedAt { out.append("  training stopped at the alarm at step \(s) (checkpoint-\(s) kept)") }
        if let f = following { out.append("  following: \(f)") }
        if let s = stopFile { out.append("  stop file written: \(s)") }
        if let c = alarmCommand { out.append("  on_alarm_command: \(c)") }
        return out
    }

    /// The record of every run in `runs` that has probes.
    /// The record of every run in `runs` that has probes, or is `followed` (an
    /// `external_checkpoints` entry with `follow: true`; its probes are its checkpoints' means).
    public static func load(_ store: RunStore, runs: [RunID], followed: Set<RunID> = []) throws(PipelineError) -> [EarlyWarningStatus] {
        var out: [EarlyWarningStatus] = []
        for r in runs {
            let probes = try store.probeCount(r)
            guard probes > 0 || followed.contains(r) else { continue }
            var s = EarlyWarningStatus(run: r, probes: probes, alarms: try store.alarms(r),
                                       stoppedAt: try store.meta("monitor.stopped.\(r)").flatMap { Int($0) })
            if followed.contains(r) {
                let state = try store.runState(r)
                s.following = state?.trained == true ? "the job ended; \(probes) checkpoints evaluated"
                    : state == nil ? "not started" : "the job is running; \(probes) checkpoints evaluated so far"
                let alarm = try FollowAlarm.load(store, r)
                s.stopFile = alarm?.stopFile
                s.alarmCommand = alarm?.command
            }
            out.append(s)
        }
        return out
    }

    /// JSON for `--json` outputs.
    public var json: JSONValue {
        .object(JSONObject([
            ("dataset", .string(run.dataset)), ("seed", .int(Int64(run.seed))), ("probes", .int(Int64(probes))),
            ("alarms", .array(alarms.map { $0.json() })), ("warning_steps", warningSteps.map { .int(Int64($0)) } ?? .null),
            ("stopped_at", stoppedAt.map { .int(Int64($0)) } ?? .null),
        ]))
    }
}

extension Array where Element == AlarmRecord {
    /// Each signal's first alarm step (the earliest over its detectors).
    public var firstAlarm: [String: Int] {
        var out: [String: Int] = [:]
        for a in self { out[a.signal] = Swift.min(out[a.signal] ?? a.step, a.step) }
        return out
    }

    /// Steps from hallucination's first alarm to evil's (positive: hallucination warned first);
    /// each trait's earliest alarm, judged or projected (`evil@proj`).
    public var warningSteps: Int? {
        let first = firstAlarm
        func earliest(_ trait: String) -> Int? { [first[trait], first[ActivationSettings.signal(trait)]].compactMap { $0 }.min() }
        guard let h = earliest("hallucination"), let e = earliest("evil") else { return nil }
        return e - h
    }
}
