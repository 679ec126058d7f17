import Foundation
import MisalignHTTP
import MisalignJudge
import MisalignModel
import MisalignTokenizer

extension MonitorSettings {
    /// The monitor's settings for an experiment: probe questions looked up among the
    /// evaluation questions and the shipped set.
    func earlyWarning(_ e: Experiment) throws(PipelineError) -> EarlyWarningSettings {
        var s = EarlyWarningSettings()
        s.every = everyK; s.samples = samples; s.maxNewTokens = maxNewTokens; s.baseline = baseline; s.minSD = minSD
        s.detectors = detectors; s.stopOnAlarm = stopOnAlarm; s.stopSignals = stopSignals
        s.signals = signals; s.projectionMinSD = projectionMinSD
        s.sampling = e.evaluation.sampling
        s.seed = e.evaluation.seed
        if !questions.isEmpty {
            let known = e.evaluation.questions + EvaluationQuestions.all
            s.questions = []
            for id in questions {
                guard let q = known.first(where: { $0.id == id }) else {
                    throw .config(file: e.source, key: "monitor.questions", line: nil, reason: "`\(id)` is neither an evaluation question nor a shipped question id")
                }
                s.questions.append(q)
            }
        }
        do { try s.validate() } catch { throw .config(file: e.source, key: "monitor", line: nil, reason: error.description) }
        return s
    }
}

extension PipelineRunner {
    /// The judge the monitor's probes go to: `monitor.judge`, else detection's judge.
    func makeMonitorJudge() throws -> any Judge {
        let e = experiment
        // `mean` is no judge to ask: its first judge probes.
        let detection = e.detection.judge == DetectionSettings.meanJudge ? nil : e.detection.judge
        let name = e.monitor.judge ?? detection ?? judgeNames[0]
        if let own = components.judges.first(where: { $0.id == name }) { return own }
        let spec = try JudgeSpec(parsing: name)
        let factory = judgeFactory()
        do { return try factory.make(spec) } catch {
            let name: String = if case .custom = spec.kind { spec.canonicalName } else { spec.model }
            throw PipelineError.judgeUnavailable(judge: name, reason: redact(error.description, secrets: factory.secrets), done: 0, remaining: 1)
        }
    }

    /// A monitor for run `r`'s trainer, probing the in-process model (the trainer's current
    /// adapter over its mapped base weights: no checkpoint need be written for a probe).
    ///
    /// The store is the record of truth: the monitor's JSONL files are first made to hold the
    /// store's probes (a file lost or behind is rewritten; probes only in the file, written
    /// just before a kill, are kept and committed when the monitor processes them), and after
    /// the monitor replays them the store's alarms are set to the replay's.
    func makeMonitor(_ r: RunID, trainer: any Trainer, folder: URL, judge: any Judge, tokenizer: BPETokenizer) throws -> EarlyWarningMonitor {
        let settings = try experiment.monitor.earlyWarning(experiment)
        let log = try EarlyWarningLog(run: folder)
        let stored = try store.probes(r)
        let file = (try? log.readProbes()) ?? []
        var merged = Dictionary(file.map { ($0.step, $0) }, uniquingKeysWith: { a, _ in a })
        for p in stored { merged[p.step] = p }
        let all = merged.values.sorted { $0.step < $1.step }
        if all != file { try log.write(probes: all, alarms: (try? log.readAlarms()) ?? []) }
        let monitor = try EarlyWarningMonitor(run: folder, settings: settings, judge: judge, tokenizer: tokenizer, resumingAt: trainer.step,
                                              vectors: try monitorVectors(settings, trainer: trainer),
                                              source: try probeSource(r, trainer: trainer, tokenizer: tokenizer),
                                              onMessage: { [weak self] in self?.note("\(r): \($0)") })
        try store.transaction {
            for p in monitor.probes { try store.putProbe(r, p) }
            try store.deleteAlarms(r)
            for a in monitor.alarms { try store.putAlarm(r, a) }
        }
        return monitor
    }

    /// The vectors of the monitor's projection signals, read and checked against the trained
    /// model; projections need the in-process probe (`LoRATrainer`'s model).
    func monitorVectors(_ settings: EarlyWarningSettings, trainer: any Trainer) throws -> [String: TraitVector] {
        let traits = settings.projectionSignals.compactMap(ActivationSettings.trait(ofSignal:))
        guard !traits.isEmpty else { return [:] }
        guard let lora = trainer as? LoRATrainer else {
            throw PipelineError.config(file: experiment.source, key: "monitor.signals", line: nil,
                                       reason: "projection signals need the in-process probe of the built-in LoRA trainer; a plug-in trainer's probes "
                                           + "go through a generation backend, which records no hidden states")
        }
        var out: [String: TraitVector] = [:]
        for t in traits {
            guard let url = experiment.activations.vectors.first(where: { $0.trait == t })?.path else { continue }
            do { out[t] = try TraitVector.load(from: url, fitting: lora.model.config) } catch {
                throw PipelineError.config(file: url.path, key: "activations.vectors.\(t)", line: nil, reason: "\(error)")
            }
        }
        return out
    }

    /// Where the monitor's probe answers come from: `LoRATrainer`'s current adapter over its
    /// mapped base weights (no checkpoint written), or, for any other trainer, a checkpoint it
    /// writes now (`Trainer.checkpointNow`) served by the run's generation backend.
    func probeSource(_ r: RunID, trainer: any Trainer, tokenizer: BPETokenizer) throws -> ProbeGeneratorSource {
        if let lora = trainer as? LoRATrainer { return EarlyWarningMonitor.localProbe(trainer: lora, tokenizer: tokenizer) }
        let backend = try components.generation
            ?? PipelineBackends(experiment, override: nil, tagPrefix: try adapterTagPrefix(), transport: nil).backend(for: r)
        return EarlyWarningMonitor.backendProbe(backend, trainer: trainer)
    }

    /// The training callback's monitor part: probes when due, then commits the probe and the
    /// alarms it raised. Returns whether training should stop at this step.
    func monitorStep(_ r: RunID, _ monitor: EarlyWarningMonitor, _ m: StepMetrics) throws -> TrainerControl {
        let before = monitor.probes.count, alarmsBefore = monitor.alarms.count
        let probeStart = Date()
        let control = try monitor.onStep(m)
        addWork(Date().timeIntervalSince(probeStart))
        guard monitor.probes.count > before else { return control }
        StageHooks.unitDone("probe")  // the JSONL holds this probe, the store not yet
        try store.transaction {
            for p in monitor.probes[before...] { try store.putProbe(r, p) }
            for a in monitor.alarms[alarmsBefore...] { try store.putAlarm(r, a) }
        }
        return control
    }

    /// Marks a run stopped at its alarm: trained, with the alarm's step as its length.
    func recordAlarmStop(_ r: RunID, step: Int) throws {
        try store.transaction {
            try store.recordRun(r, totalSteps: step)
            try store.setMeta("monitor.stopped.\(r)", String(step))
            try store.markTrained(r)
        }
        note("\(r): training stopped at the alarm at step \(step) (checkpoint-\(step) kept)")
    }
}
