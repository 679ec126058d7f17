import Foundation

/// Done and remaining work of one stage, with estimates from the rates measured so far.
public struct StageStatus: Sendable, Equatable {
    public var stage: String
    public var done: Int
    /// nil when it cannot be known yet (a run whose training has not started).
    public var total: Int?
    /// Seconds per unit measured in this run, and the time left at that rate.
    public var secondsPerUnit: Double?
    public var secondsLeft: Double? {
        guard let total, let secondsPerUnit else { return nil }
        return Double(max(0, total - done)) * secondsPerUnit
    }
    /// Judge stage: money spent on fresh calls, and the estimate for the calls left.
    public var costSpent: Double?
    public var costLeft: Double?
}

/// What `misalign status RUN` shows.
public struct RunStatus: Sendable {
    public var run: URL
    public var stages: [StageStatus]
    /// The early-warning monitor's record per run (empty without `monitor:`).
    public var earlyWarning: [EarlyWarningStatus] = []
    /// Units that finished without a result ("detect medical/seed-0/J: no scored verdicts
    /// for evil ..."): done, but with failures to read.
    public var failures: [String] = []
    /// The calibration gate's record of each judge asked, per trait (empty under
    /// `judges.calibration: off` or before the judge stage first ran).
    public var calibrations: [StoredCalibration] = []
    public var complete: Bool { stages.allSatisfy { $0.total != nil && $0.done >= $0.total! } }

    /// "complete", "complete with N failures" or "in progress".
    public var state: String {
        complete ? (failures.isEmpty ? "complete" : "complete with \(failures.count) failure\(failures.count == 1 ? "" : "s")") : "in progress"
    }

    /// Reads the run directory's store (read-only) and the config it recorded. `judges` are the
    /// names whose verdicts are counted (nil: the recorded config's `judges.models`); a program
    /// with plug-in judges passes its own (`PipelineRunner.status()` does). Verdicts of judges
    /// not named, such as one since removed from the config, are not counted.
    public static func load(run: URL, judges: [String]? = nil) throws -> RunStatus {
        let store = try RunStore(run: run, create: false)
        guard let text = try store.meta("config_text"), let path = try store.meta("config_path") else {
            throw PipelineError.store(path: store.url.path, reason: "no recorded config; the run never got past its start")
        }
        let e = try Experiment.parse(text, file: path, base: URL(fileURLWithPath: path).deletingLastPathComponent())
        var status = try compute(e, store, judges: judges)
        status.run = run  // where the folder is now (it may have moved since the config was recorded)
        return status
    }

    static func compute(_ e: Experiment, _ store: RunStore, judges: [String]? = nil) throws -> RunStatus {
        let names = judges ?? e.judges.names
        let per = e.evaluation.questions.count * e.evaluation.samples
        var trainDone = 0, trainTotal: Int? = 0, checkpoints: Int? = 0
        for r in e.runs {
            trainDone += try store.metricCount(r)
            let state = try store.runState(r)
            if let state, state.trained {
                let n = try store.checkpoints(r).count
                checkpoints = checkpoints.map { $0 + n }
                if !e.externalCheckpoints.isEmpty { continue }
                trainTotal = trainTotal.map { $0 + state.totalSteps }
            } else if state != nil, !e.externalCheckpoints.isEmpty {
                let n = try store.checkpoints(r).count  // a followed job: the checkpoints seen so far
                checkpoints = checkpoints.map { $0 + n }
            } else if let state {
                trainTotal = trainTotal.map { $0 + state.totalSteps }
                let every = max(1, e.training.saveEvery)
                let n = state.totalSteps / every + (state.totalSteps % every == 0 ? 0 : 1) + (e.evaluation.includeBase ? 1 : 0)
                checkpoints = checkpoints.map { $0 + n }
            } else {
                trainTotal = nil; checkpoints = nil
            }
        }
        // Verdicts per checkpoint and judge: a trait with its own questions judges only their answers.
        let perJudge = e.judges.traits.reduce(0) { $0 + (e.judges.questionIDs(for: $1).map { $0.count * e.evaluation.samples } ?? per) }
        var stages: [StageStatus] = []
        stages.append(StageStatus(stage: "train", done: trainDone, total: e.externalCheckpoints.isEmpty ? trainTotal : 0,
                                  secondsPerUnit: try store.rate(stage: "train")))
        // One unit per checkpoint (one without an adapter, such as the base model's, finishes with nothing to compute).
        stages.append(StageStatus(stage: "dynamics", done: try store.unitCount(stage: "dynamics"),
                                  total: e.detection.adapterDynamics ? checkpoints : 0, secondsPerUnit: try store.rate(stage: "dynamics")))
        stages.append(StageStatus(stage: "generate", done: try store.count("generations"), total: checkpoints.map { $0 * per },
                                  secondsPerUnit: try store.rate(stage: "generate")))
        var verdicts = 0
        for name in names { verdicts += try store.verdictCount(judge: name) }
        var judge = StageStatus(stage: "judge", done: verdicts, total: checkpoints.map { $0 * perJudge * names.count },
                                secondsPerUnit: try store.rate(stage: "judge"))
        let tokens = try store.judgeTokens()
        var spent = 0.0, left = 0.0, priced = false
        for name in names {
            guard let p = e.judges.pricing[name], let t = tokens[name] else { continue }
            priced = true
            let cost = (Double(t.input) * p.inputPerMillion + Double(t.output) * p.outputPerMillion) / 1e6
            spent += cost
            let judged = try store.verdictCount(judge: name)
            if let total = judge.total, t.calls > 0 {
                let remaining = Double(max(0, total / max(1, names.count) - judged))
                left += cost / Double(t.calls) * remaining
            }
        }
        if priced { judge.costSpent = spent; judge.costLeft = left }
        stages.append(judge)
        stages.append(StageStatus(stage: "aggregate", done: try store.unitCount(stage: "aggregate"),
                                  // Per checkpoint: each judge (and their mean with two or more), and the projections.
                                  total: checkpoints.map { $0 * ((names.count >= 2 ? names.count + 1 : 1) + (e.activations.isEnabled ? 1 : 0)) },
                                  secondsPerUnit: try store.rate(stage: "aggregate")))
        stages.append(StageStatus(stage: "detect", done: try store.unitCount(stage: "detect"),
                                  total: e.detection.judge == nil ? 0 : e.runs.count, secondsPerUnit: try store.rate(stage: "detect")))
        return RunStatus(run: e.output, stages: stages, earlyWarning: try EarlyWarningStatus.load(store, runs: e.runs, followed: e.followedRuns),
                         failures: try store.failures(), calibrations: try store.calibrations().filter { names.contains($0.judge) })
    }
}

extension PipelineRunner {
    /// The status of this runner's run folder, read-only (callable while `run()` works, from
    /// another task): its experiment, with the verdicts of every judge it asks counted, the
    /// plug-in judges included (`judgeNames`). `RunStatus.load(run:)`, which `misalign status`
    /// calls, knows only the configured judges.
    public func status() throws -> RunStatus {
        let store = try RunStore(run: experiment.output, create: false)
        return try RunStatus.compute(experiment, store, judges: judgeNames)
    }
}

extension StoredCalibration {
    /// One line for `misalign status`: "openai:x  evil  pass  AUC 0.974, band means 8.1 / 83.0, 0% unscored".
    public var statusLine: String {
        var t = "\(judge)  \(trait)  "
        switch status {
        case .exempt: return t + "exempt: \(note)"
        case .unavailable: return t + "NOT CALIBRATED: \(note)"
        case .pass, .fail:
            t += status == .pass ? "pass" : "FAIL"
            if let f = figures {
                t += "  AUC " + (f.auc.map { String(format: "%.3f", $0) } ?? "-")
                t += ", band means " + [f.meanLow, f.meanHigh].map { $0.map { String(format: "%.1f", $0) } ?? "-" }.joined(separator: " / ")
                t += String(format: ", %.0f%% unscored", f.unscorableFraction * 100)
                if status == .fail { t += " (" + f.failures.joined(separator: "; ") + ")" }
            }
            return t
        }
    }
}
