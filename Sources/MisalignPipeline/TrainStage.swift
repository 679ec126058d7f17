import Foundation
import MisalignIO
import MisalignJudge
import MisalignKernels
import MisalignModel
import MisalignTokenizer

extension PipelineRunner {
    /// The folder holding one run's `checkpoint-<step>/` folders.
    public static func checkpointFolder(_ output: URL, _ r: RunID) -> URL {
        output.appendingPathComponent("checkpoints").appendingPathComponent("\(r.dataset)-seed\(r.seed)")
    }

    /// A checkpoint written with other training settings than the config's, as `misalign run`
    /// words a changed config: each setting under its config key (`training.lr was 0.002, is
    /// now 0.001`), the data under the dataset's.
    static func configChanged(_ output: URL, _ r: RunID, checkpoint: String, changes: [SettingChange]) -> PipelineError {
        let list = changes.map { c in
            let field = c.name.hasPrefix("data") ? "datasets.\(r.dataset) (\(c.name))" : "training.\(TrainingSettingKey.setting(c.name)?.yamlKey ?? c.name)"
            return "\(field) was \(c.checkpoint), is now \(c.now)"
        }
        return .configChanged(run: output.path, detail: "\(checkpoint): " + list.joined(separator: "; "))
    }

    /// Trains every run that has not finished (resuming from its latest checkpoint), or
    /// registers external checkpoints. Returns the optimizer steps taken.
    func trainStage() throws -> Int {
        let e = experiment
        var steps = 0
        if !e.externalCheckpoints.isEmpty {
            for x in e.externalCheckpoints where x.follow == nil {  // followed ones: followStage
                let r = RunID(dataset: x.dataset, seed: x.seed)
                if try store.runState(r)?.trained == true { continue }
                let list = try CheckpointDirectory.list(in: x.path)
                try store.transaction {
                    try store.recordRun(r, totalSteps: list.last?.step ?? 0)
                    if e.evaluation.includeBase { try store.addCheckpoint(r, step: 0, path: "") }
                    for c in list { try store.addCheckpoint(r, step: c.step, path: c.directory.path) }
                    try store.markTrained(r)
                }
                note("\(r): \(list.count) external checkpoints from \(x.path.path)")
            }
            return 0
        }
        BLAS.threads = e.threads > 0 ? e.threads : ProcessInfo.processInfo.activeProcessorCount
        let runs = e.runs
        var monitorParts: (judge: any Judge, tokenizer: BPETokenizer)?
        for (i, r) in runs.enumerated() {
            try checkCancelled("train")
            if try store.runState(r)?.trained == true { continue }
            var settings = e.training
            settings.seed = UInt64(r.seed)
            let folder = Self.checkpointFolder(e.output, r)
            let dataset = e.datasets.first { $0.name == r.dataset }!
            let job = TrainingJob(model: e.model, data: dataset.path, out: folder, tokenizer: e.tokenizer, settings: settings,
                                  skipInvalid: e.skipInvalid)
            let trainer: any Trainer
            let loadStart = Date()
            let factory = components.trainers ?? LoRATrainerFactory()
            do { trainer = try factory.makeTrainer(for: r, job: job) { self.note("\(r): \($0)") } } catch let err as FileError {
                throw PipelineError.unwritable(path: folder.path, reason: err.description)
            } catch TrainingError.invalidExample(let file, let line, let reason) {
                // The trainer's advice names `misalign train`'s flag; the pipeline's is a setting.
                throw PipelineError.config(file: file, key: "datasets.\(r.dataset)", line: line,
                                           reason: "\(reason); fix the line, or set `training.skip_invalid: true` in \(e.source) to skip such lines (they are counted)")
            } catch TrainingError.settingsChanged(let checkpoint, let changes) {
                throw Self.configChanged(e.output, r, checkpoint: checkpoint, changes: changes)
            } catch TrainingError.invalidSetting("holdout", let detail) {
                throw PipelineError.config(file: e.source, key: "training.holdout", line: e.lines["training.holdout"],
                                           reason: "datasets.\(r.dataset): \(detail)")
            }
            addWork(Date().timeIntervalSince(loadStart))  // loading weights and tokenising data is training work
            try store.recordRun(r, totalSteps: trainer.totalSteps)
            if let ck = trainer.latestCheckpoint { keepTrainerCheckpoint(r, ck) }
            try registerCheckpoints(r, folder: folder)
            var monitor: EarlyWarningMonitor?
            if e.monitor.enabled {
                if monitorParts == nil { monitorParts = (try makeMonitorJudge(), try BPETokenizer(directory: e.tokenizer ?? e.model)) }
                monitor = try makeMonitor(r, trainer: trainer, folder: folder, judge: monitorParts!.judge, tokenizer: monitorParts!.tokenizer)
                if let monitor, monitor.alreadyStopped, let stop = monitor.stopStep {
                    try recordAlarmStop(r, step: stop)  // stopped at the alarm before a crash: nothing more to train
                    continue
                }
            }
            var stopReason: PipelineError?
            var lastRegistered = trainer.latestCheckpoint?.step ?? trainer.step
            var since = Date()
            // A checkpoint is written after its step's callback, so each callback registers
            // the one the previous step wrote; the last is registered after `train` returns.
            func registerNew() throws {
                guard let ck = trainer.latestCheckpoint, ck.step > lastRegistered else { return }
                keepTrainerCheckpoint(r, ck)
                try store.transaction {
                    try store.addCheckpoint(r, step: ck.step, path: ck.directory.path)
                    try store.addHeldOutLoss(r, checkpoint: ck.directory, step: ck.step)
                    try store.finish(stage: "train", unit: "\(r)/step-\(ck.step)", items: ck.step - lastRegistered,
                                     seconds: Date().timeIntervalSince(since))
                }
                lastRegistered = ck.step
                since = Date()
            }
            // Training work is everything `train` does (steps, checkpoint writes) except this
            // callback, which is the pipeline's (store commits, progress).
            var callbackSeconds = 0.0
            let trainStart = Date()
            defer { addWork(Date().timeIntervalSince(trainStart) - callbackSeconds) }
            let outcome: TrainingOutcome
            do { outcome = try trainer.train { m in
                let callbackStart = Date()
                defer { callbackSeconds += Date().timeIntervalSince(callbackStart) }
                try registerNew()
                try self.store.addMetric(r, m)
                let control = try monitor.map { try self.monitorStep(r, $0, m) } ?? .proceed
                steps += 1
                self.progress(.stage(name: "train \(r) (\(i + 1)/\(runs.count))", done: m.step, total: m.totalSteps))
                StageHooks.unitDone("train")
                do throws(PipelineError) { try self.checkCancelled("train") } catch { stopReason = error; return .stop }
                return control
            } } catch let err as EarlyWarningError {
                throw PipelineError.stage(stage: "train", unit: "\(r)", reason: err.description)
            } catch let err as TrainingError {
                // A checkpoint registered before the trainer found its weights wrecked (and set
                // it aside) must not stay in the store for generation to read.
                switch err {
                case .diverged, .nonFinite: try store.forgetSetAsideCheckpoints(r)
                default: break
                }
                throw err
            }
            try registerNew()
            if let stopReason { throw stopReason }
            try registerCheckpoints(r, folder: folder)
            if let monitor, outcome.stoppedEarly, monitor.alreadyStopped, let stop = monitor.stopStep {
                try recordAlarmStop(r, step: stop)
            } else if !outcome.stoppedEarly {
                try store.markTrained(r)
            }
        }
        return steps
    }

    /// Records the checkpoints on disk (those written before a crash included) and step 0.
    func registerCheckpoints(_ r: RunID, folder: URL) throws {
        let list = try CheckpointDirectory.list(in: folder)
        try store.transaction {
            if experiment.evaluation.includeBase { try store.addCheckpoint(r, step: 0, path: "") }
            for c in list {
                try store.addCheckpoint(r, step: c.step, path: c.directory.path)
                try store.addHeldOutLoss(r, checkpoint: c.directory, step: c.step)
            }
        }
    }
}
