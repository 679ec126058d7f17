import Foundation
import MisalignModel

/// How the pipeline follows a training job that is still writing its checkpoints
/// (`external_checkpoints` entry with `follow: true`; Docs/FollowingTraining.md).
///
/// Each `checkpoint-N/` is evaluated (generated, judged, aggregated) once it is complete, its
/// means go to the online detectors, and an alarm on a stop signal writes `stopFile` (and runs
/// `onAlarmCommand`), which the job's callback reads to stop training. Following ends when
/// `doneFile` appears or a checkpoint of `finalStep` or later is evaluated; then the analysis
/// runs as for finished checkpoints.
public struct FollowSettings: Sendable, Equatable {
    /// Seconds between two looks at the folder (`poll_seconds`).
    public var pollSeconds = 10.0
    /// Seconds without a new checkpoint (and no done file) before the run gives up with an
    /// error (`idle_timeout`); 0 waits for ever.
    public var idleTimeout = 3600.0
    /// The job's last step (`final_step`): following ends once a checkpoint at or past it is
    /// evaluated. nil: only the done file ends it.
    public var finalStep: Int?
    /// The file the job writes when it ends (`done_file`), relative to the followed folder
    /// unless absolute.
    public var doneFile = "TRAINING_DONE"
    /// The file written on an alarm (`stop_file`), relative to the followed folder unless absolute.
    public var stopFile = "MISALIGN_STOP"
    /// Run through `/bin/sh -c` on an alarm (`on_alarm_command`), with `MISALIGN_ALARM_*`
    /// variables; its failure is reported, not fatal.
    public var onAlarmCommand: String?
    /// Seconds the alarm command may run before it is stopped (`on_alarm_timeout`).
    public var onAlarmTimeout = 120.0

    public init() {}

    /// The keys of an `external_checkpoints` entry that only apply with `follow: true`.
    static let keys = ["poll_seconds", "idle_timeout", "final_step", "done_file", "stop_file", "on_alarm_command", "on_alarm_timeout"]

    /// `name` (a `done_file` or `stop_file` value) under the followed folder, unless absolute.
    static func file(_ name: String, in folder: URL) -> URL {
        let s = (name as NSString).expandingTildeInPath
        return s.hasPrefix("/") ? URL(fileURLWithPath: s) : folder.appendingPathComponent(s)
    }

    public func doneURL(in folder: URL) -> URL { Self.file(doneFile, in: folder) }
    public func stopURL(in folder: URL) -> URL { Self.file(stopFile, in: folder) }
}

extension Experiment {
    /// The runs of `external_checkpoints` entries with `follow: true`.
    public var followedRuns: Set<RunID> {
        Set(externalCheckpoints.filter { $0.follow != nil }.map { RunID(dataset: $0.dataset, seed: $0.seed) })
    }

    /// The follow settings of one `external_checkpoints` entry `m`: nil without `follow: true`;
    /// a follow-only key without it is refused.
    static func parseFollow(_ m: YAMLNode) throws(PipelineError) -> FollowSettings? {
        let on = try m.optional("follow")?.bool() ?? false
        guard on else {
            for key in FollowSettings.keys where m.keys.contains(key) {
                throw PipelineError.config(file: m.file, key: m.join(key), line: m.line, reason: "applies with follow: true only")
            }
            return nil
        }
        var f = FollowSettings()
        if let v = try m.optional("poll_seconds") { f.pollSeconds = try v.double(in: 0.01...86_400, "between 0.01 and 86400 seconds") }
        if let v = try m.optional("idle_timeout") { f.idleTimeout = try v.double(in: 0...31_536_000, "between 0 (wait for ever) and 31536000 seconds") }
        if let v = try m.optional("final_step") { f.finalStep = try v.int(min: 1, max: TrainingSettings.Bounds.steps) }
        func fileName(_ key: String) throws(PipelineError) -> String? {
            guard let v = try m.optional(key) else { return nil }
            let s = try v.string()
            guard !s.trimmingCharacters(in: .whitespaces).isEmpty, !s.hasSuffix("/") else { throw v.error("must name a file") }
            return s
        }
        if let s = try fileName("done_file") { f.doneFile = s }
        if let s = try fileName("stop_file") { f.stopFile = s }
        if f.doneFile == f.stopFile {
            throw PipelineError.config(file: m.file, key: m.join("stop_file"), line: m.line, reason: "must differ from done_file (`\(f.doneFile)`)")
        }
        if let v = try m.optional("on_alarm_command") {
            let s = try v.string()
            guard !s.trimmingCharacters(in: .whitespaces).isEmpty else { throw v.error("is empty; give a shell command or remove the key") }
            f.onAlarmCommand = s
        }
        if let v = try m.optional("on_alarm_timeout") { f.onAlarmTimeout = try v.double(in: 0.1...86_400, "between 0.1 and 86400 seconds") }
        return f
    }
}
