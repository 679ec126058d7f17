import Foundation
import MisalignIO
import MisalignModel

/// One followed run while `followStage` watches it.
struct FollowedRun {
    let run: RunID
    let folder: URL
    let settings: FollowSettings
    var scan = FollowScan()
    var detectors: [String: SignalDetectors]
    /// The last step fed to the detectors (-1: none).
    var fed = -1
    var alarms: [AlarmRecord] = []
    /// When the last new checkpoint (or the start) was seen, for `idle_timeout`.
    var lastNew = Date()
    /// Why the job is over (done file, final step), once it is.
    var over: String?
    var finished = false
}

extension PipelineRunner {
    /// The online detectors' settings for followed runs: the `monitor:` section's detector
    /// settings (`detectors`, `baseline`, `min_sd`, `stop_signals`), fed the per-checkpoint means
    /// of the judged traits among the monitor's signals (hallucination, evil).
    func followDetectorSettings() throws(PipelineError) -> EarlyWarningSettings {
        let e = experiment
        var s = try e.monitor.earlyWarning(e)
        // Judged traits, and projection signals with a vector (their per-checkpoint means).
        s.signals = s.signals.filter { sig in
            e.judges.traits.contains(sig) || ActivationSettings.trait(ofSignal: sig).map { t in e.activations.vectors.contains { $0.trait == t } } == true
        }
        guard !s.signals.isEmpty else {
            throw .config(file: e.source, key: "judges.traits", line: e.lines["judges.traits"],
                          reason: "following external_checkpoints feeds the judged hallucination and evil means to the online detectors; judge at least one of them")
        }
        for sig in s.stopSignals where !s.signals.contains(sig) {
            throw .config(file: e.source, key: "monitor.stop_signals", line: e.lines["monitor.stop_signals"],
                          reason: "`\(sig)` is not judged (judges.traits: \(e.judges.traits.joined(separator: ", "))), so no alarm on it could stop a followed job")
        }
        return s
    }

    /// The judge whose per-checkpoint means the detectors follow: detection's, else the first.
    var followJudge: String { experiment.detection.judge ?? judgeNames[0] }

    /// Follows every `external_checkpoints` entry with `follow: true` whose job has not ended:
    /// looks at its folder every `poll_seconds`, registers each complete new checkpoint,
    /// generates, judges and aggregates it, feeds its means to the online detectors, and acts on
    /// a stop-signal alarm (stop file, command). Returns when every followed job has ended (done
    /// file or `final_step`) and its checkpoints are evaluated; the analysis stages then run as
    /// for finished checkpoints. Work done is added to the summary's generate, judge and
    /// aggregate counts.
    func followStage() async throws {
        let e = experiment
        guard !e.followedRuns.isEmpty else { return }
        let detectorSettings = try followDetectorSettings()
        var runs: [FollowedRun] = []
        for x in e.externalCheckpoints {
            guard let f = x.follow else { continue }
            let r = RunID(dataset: x.dataset, seed: x.seed)
            if try store.runState(r)?.trained == true { continue }
            var run = FollowedRun(run: r, folder: x.path, settings: f,
                                  detectors: Dictionary(uniqueKeysWithValues: detectorSettings.signals.map { ($0, SignalDetectors(settings: detectorSettings, signal: $0)) }))
            try store.transaction {
                try store.recordRun(r, totalSteps: max(f.finalStep ?? 0, try store.checkpoints(r).last?.step ?? 0))
                if e.evaluation.includeBase { try store.addCheckpoint(r, step: 0, path: "") }
                try store.deleteAlarms(r)  // replayed below from the stored aggregates
            }
            try await feedDetectors(&run, settings: detectorSettings, replay: true)
            runs.append(run)
        }
        guard !runs.isEmpty else { return }
        for run in runs {
            let exists = FileManager.default.fileExists(atPath: run.folder.path)
            note("follow \(run.run): \(exists ? "watching" : "waiting for") \(run.folder.path) every \(run.settings.pollSeconds) s"
                 + (run.settings.finalStep.map { " until step \($0) or" } ?? " until") + " \(run.settings.doneFile) appears")
        }
        var first = true
        while true {
            try checkCancelled("follow")
            var added = 0
            for i in runs.indices where !runs[i].finished { added += try scan(&runs[i]) }
            // Right after a look, so a long evaluation does not count as the job's silence.
            for run in runs where !run.finished && run.over == nil && run.settings.idleTimeout > 0
            && Date().timeIntervalSince(run.lastNew) > run.settings.idleTimeout {
                throw PipelineError.stage(stage: "follow", unit: "\(run.run)", reason:
                    "no new checkpoint under \(run.folder.path) for \(String(format: "%g", run.settings.idleTimeout)) s (external_checkpoints idle_timeout) and no "
                    + "\(run.settings.doneURL(in: run.folder).path); run again to keep following, or create that file to evaluate what is there")
            }
            if added > 0 || first {
                let generated = try await generateStage()
                summary.done["generate", default: 0] += generated
                let judged = try await judgeStage()
                summary.done["judge", default: 0] += judged
                let aggregated = try aggregateStage()
                summary.done["aggregate", default: 0] += aggregated
            }
            first = false
            for i in runs.indices where !runs[i].finished {
                try await feedDetectors(&runs[i], settings: detectorSettings, replay: false)
                if let over = runs[i].over { try finish(&runs[i], reason: over) }
            }
            if runs.allSatisfy(\.finished) { return }
            try await pause(runs.filter { !$0.finished }.map(\.settings.pollSeconds).min() ?? 1)
        }
    }

    /// Sleeps `seconds` in short slices, so `cancel()` and task cancellation stop it promptly.
    func pause(_ seconds: Double) async throws {
        let end = Date().addingTimeInterval(seconds)
        while true {
            try checkCancelled("follow")
            let left = end.timeIntervalSinceNow
            if left <= 0 { return }
            try? await Task.sleep(nanoseconds: UInt64(min(left, 0.1) * 1e9))
        }
    }

    /// Registers the run's complete new checkpoints; notes the end of the job (done file,
    /// `final_step`). Returns how many were registered.
    func scan(_ f: inout FollowedRun) throws -> Int {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: f.folder.path, isDirectory: &isDir), !isDir.boolValue {
            throw PipelineError.missingInput(key: "external_checkpoints", path: f.folder.path, reason: "is a file; path: names the folder the job writes checkpoint-N/ folders into")
        }
        let r = f.run
        let doneFile = FileManager.default.fileExists(atPath: f.settings.doneURL(in: f.folder).path)
        let known = Set(try store.checkpoints(r).map(\.step))
        let new = f.scan.newCheckpoints(in: f.folder, known: known, jobDone: doneFile)
        if !new.isEmpty {
            try store.transaction {
                for c in new { try store.addCheckpoint(r, step: c.step, path: c.directory.path) }
                try store.recordRun(r, totalSteps: max(f.settings.finalStep ?? 0, new.last!.step, known.max() ?? 0))
            }
            f.lastNew = Date()
            note("follow \(r): checkpoint " + new.map { String($0.step) }.joined(separator: ", ") + " complete")
        }
        let last = max(known.max() ?? 0, new.last?.step ?? 0)
        if doneFile {
            f.over = "\(f.settings.doneFile) appeared"
        } else if let final = f.settings.finalStep, last >= final {
            f.over = "reached final_step \(final)"
        }
        return new.count
    }

    /// Ends a followed run: its last checkpoint is its length, and it counts as trained.
    func finish(_ f: inout FollowedRun, reason: String) throws {
        let r = f.run
        let last = try store.checkpoints(r).last?.step
        // Only when every registered checkpoint is fed (evaluated); else at a later look.
        if let last, f.fed < last { return }
        try store.transaction {
            try store.recordRun(r, totalSteps: last ?? 0)
            try store.markTrained(r)
        }
        f.finished = true
        note("follow \(r): the job ended (\(reason)); \(try store.checkpoints(r).count) checkpoints evaluated")
    }
}
