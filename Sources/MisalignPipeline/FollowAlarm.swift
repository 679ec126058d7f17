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

    /// Runs `command` through `/bin/sh -c` with `env` added, its output written to `log`; the
    /// command and whatever it started (its own process group) are stopped after `timeout`
    /// seconds. Returns its outcome in words (never throws: the command's failure is reported,
    /// not fatal).
    static func runCommand(_ command: String, env: [String: String], log: URL, timeout: Double) async -> String {
        let environment = ProcessInfo.processInfo.environment.merging(env) { _, new in new }.map { "\($0.key)=\($0.value)" }
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer { posix_spawn_file_actions_destroy(&actions); posix_spawnattr_destroy(&attributes) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let args: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { (s: String) in strdup(s) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { (s: String) in strdup(s) } + [nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp)
        guard rc == 0 else { return "failed: cannot start /bin/sh: \(String(cString: strerror(rc)))" }
        let end = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() >= end {
                kill(-pid, SIGKILL)  // the command's whole process group
                _ = waitpid(pid, &status, 0)
                return "failed: still running after \(timeout) s (on_alarm_timeout), stopped; output in \(log.path)"
            }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        let signal = status & 0x7f, exit = (status >> 8) & 0xff
        if signal != 0 { return "failed: killed by signal \(signal); output in \(log.path)" }
        return exit == 0 ? "exit 0" : "failed: exit status \(exit); output in \(log.path)"
    }
}
