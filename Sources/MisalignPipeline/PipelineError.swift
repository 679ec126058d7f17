import Foundation

/// Everything a config, a run directory or a stage can get wrong, each naming the file, key,
/// line or unit concerned and what to do about it.
public enum PipelineError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A config value is missing, unknown, of the wrong type or out of range. `key` is the
    /// dotted path (`training.lr`, `datasets.medical`), `line` 1-based in `file`.
    case config(file: String, key: String, line: Int?, reason: String)
    /// A file or folder the config names does not exist or cannot be used.
    case missingInput(key: String, path: String, reason: String)
    /// The output folder cannot be created or written.
    case unwritable(path: String, reason: String)
    /// The run store (SQLite) failed.
    case store(path: String, reason: String)
    /// The run store is not a database or has corrupt pages (SQLITE_CORRUPT, SQLITE_NOTADB, or
    /// `PRAGMA quick_check` found problems).
    case storeDamaged(path: String, reason: String)
    /// Another `misalign run` holds the run folder's lock; `holder` is what it wrote (pid,
    /// host, start time).
    case locked(run: String, holder: String)
    /// The run directory was made by a config that differs in something that changes results.
    case configChanged(run: String, detail: String)
    /// The generation backend the config names cannot be used (bad URL, missing API key).
    case backendUnavailable(String)
    /// A stage failed for one unit; what is done before it is kept.
    case stage(stage: String, unit: String, reason: String)
    /// The judges could not be reached or refused every call of a stage.
    case judgeUnavailable(judge: String, reason: String, done: Int, remaining: Int)
    /// Under `judges.calibration: require`, a judge failed calibration on a trait it would
    /// score (or no calibration item bands the trait): one line per (judge, trait) with the
    /// figures it missed. Nothing was judged.
    case calibrationFailed([String])
    /// Stopped through `PipelineRunner.cancel()` or task cancellation; resumable.
    case cancelled(stage: String)
    /// A run directory that has no store.
    case notARun(path: String)
    /// `misalign init` would overwrite a file.
    case fileExists(path: String)

    public var description: String {
        switch self {
        case .config(let f, let k, let l, let r):
            return "\(f)\(l.map { ":\($0)" } ?? ""): \(k.isEmpty ? "" : "\(k): ")\(r)"
        case .missingInput(let k, let p, let r): return "\(k): \(p): \(r)"
        case .unwritable(let p, let r):
            return "cannot write \(p): \(r); check that the folder is writable and the disk has room, then run again (finished work is kept)"
        case .store(let p, let r): return "run store \(p): \(r)"
        case .storeDamaged(let p, let r):
            return "run store \(p) is damaged (\(r)); restore \(RunStore.fileName) from a backup, or start a new run folder "
                + "(change output:); the folder's exports/ hold a copy of the results as of the last call that finished"
        case .locked(let run, let holder):
            return "\(run) is in use by another misalign run (\(holder)); wait for it to finish or stop it. "
                + "misalign status and report can read the run meanwhile"
        case .configChanged(let run, let d):
            return "\(run) was started with another config (\(d)); use another output folder, or restore the old setting"
        case .backendUnavailable(let b):
            return "generation: \(b)"
        case .stage(let s, let u, let r): return "\(s) \(u): \(r)"
        case .judgeUnavailable(let j, let r, let d, let n):
            return "judge \(j) is unavailable (\(r)); \(d) verdicts are stored, \(n) remain: run again when it is back"
        case .calibrationFailed(let lines):
            return "judge calibration failed (judges.calibration: require), so nothing was judged:\n"
                + lines.map { "  " + $0 }.joined(separator: "\n")
                + "\nThese scores would not tell good answers from bad ones. Use a judge that passes (`misalign judge calibrate` "
                + "shows a judge's figures), fix the trait's rubric, give judges.calibration_set (JSON Lines; Docs/Judges.md, Calibration) "
                + "with items that band the trait, or set judges.calibration: warn to judge anyway with these curves marked in the report"
        case .cancelled(let s): return "cancelled during \(s); run again to resume"
        case .fileExists(let p): return "\(p) already exists; pass force: true to overwrite it"
        case .notARun(let p): return "\(p) is not a run directory (no \(RunStore.fileName)); give the folder `misalign run` wrote"
        }
    }
}

extension PipelineError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
