import Foundation
import MisalignIO

/// The first stop-signal alarm of a followed run and what was done about it: the stop file
/// written, the alarm command run. Kept in the store (meta `follow.alarm.<run>`), so a resumed
/// follow neither fires it again nor loses it.
struct FollowAlarm: Equatable {
    var run: RunID
    var alarm: AlarmRecord
    var time: String
    /// The stop file once written; nil while still owed.
    var stopFile: String?
    /// The command's outcome once run (`exit 0`, `failed: ...`); nil while still owed.
    var command: String?

    static func metaKey(_ r: RunID) -> String { "follow.alarm.\(r)" }

    /// The stop file's content: what raised the alarm and when.
    func stopJSON(checkpoints: URL, output: URL) -> JSONValue {
        .object(JSONObject([
            ("signal", .string(alarm.signal)), ("step", .int(Int64(alarm.step))), ("detector", .string(alarm.detector)),
            ("statistic", .double(alarm.statistic)), ("change_step", .int(Int64(alarm.changeStep))), ("time", .string(time)),
            ("dataset", .string(run.dataset)), ("seed", .int(Int64(run.seed))), ("checkpoints", .string(checkpoints.path)),
            ("run", .string(output.path)),
        ]))
    }

    var json: JSONValue {
        .object(JSONObject([
            ("alarm", alarm.json()), ("time", .string(time)), ("stop_file", stopFile.map { .string($0) } ?? .null),
            ("command", command.map { .string($0) } ?? .null),
        ]))
    }

    init(run: RunID, alarm: AlarmRecord, time: String, stopFile: String? = nil, command: String? = nil) {
        self.run = run; self.alarm = alarm; self.time = time; self.stopFile = stopFile; self.command = command
    }

    init?(run: RunID, json text: String) {
        guard let v = try? JSONValue.parse(text), let a = v["alarm"].flatMap(AlarmRecord.init(json:)), let time = v["time"]?.stringValue else { return nil }
        self.init(run: run, alarm: a, time: time, stopFile: v["stop_file"]?.stringValue, command: v["command"]?.stringValue)
    }

    /// The stored alarm of run `r`, if one fired.
    static func load(_ store: RunStore, _ r: RunID) throws(PipelineError) -> FollowAlarm? {
        try store.meta(metaKey(r)).flatMap { FollowAlarm(run: r, json: $0) }
    }

    func save(_ store: RunStore) throws(PipelineError) { try store.setMeta(Self.metaKey(run), json.serialized()) }

    /// The `MISALIGN_ALARM_*` variables the alarm command sees.
    func environment(checkpoints: URL, stopFile: URL, output: URL) -> [String: String] {
        [
            "MISALIGN_ALARM_DATASET": run.dataset, "MISALIGN_ALARM_SEED": String(run.seed), "MISALIGN_ALARM_SIGNAL": alarm.signal,
            "MISALIGN_ALARM_STEP": String(alarm.step), "MISALIGN_ALARM_DETECTOR": alarm.detector,
            "MISALIGN_ALARM_STATISTIC": String(alarm.statistic), "MISALIGN_ALARM_CHECKPOINTS": checkpoints.path,
            "MISALIGN_STOP_FILE": stopFile.path, "MISALIGN_RUN": output.path,
        ]
    }

    /// Runs `command` through `/bin/sh -c` with `env` added, its output appended to `log`;
    /// stopped after `timeout` seconds. Returns its outcome in words (never throws: the
    /// command's failure is reported, not fatal).
    static func runCommand(_ command: String, env: [String: String], log: URL, timeout: Double) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        p.environment = ProcessInfo.processInfo.environment.merging(env) { _, new in new }
        p.standardInput = FileHandle.nullDevice
        if FileManager.default.createFile(atPath: log.path, contents: nil), let h = FileHandle(forWritingAtPath: log.path) {
            p.standardOutput = h; p.standardError = h
        }
        let done = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in done.signal() }
        do { try p.run() } catch { return "failed: cannot start /bin/sh: \(error.localizedDescription)" }
        if done.wait(timeout: .now() + timeout) == .timedOut {
            p.terminate()
            _ = done.wait(timeout: .now() + 5)
            return "failed: still running after \(timeout) s (on_alarm_timeout), stopped; output in \(log.path)"
        }
        if p.terminationReason == .uncaughtSignal { return "failed: killed by signal \(p.terminationStatus); output in \(log.path)" }
        return p.terminationStatus == 0 ? "exit 0" : "failed: exit status \(p.terminationStatus); output in \(log.path)"
    }
}
