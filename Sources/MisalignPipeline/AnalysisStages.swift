import Foundation
import MisalignChangePoint
import MisalignJudge

extension PipelineRunner {
    /// Whether every answer at (run, step) has a verdict from `judge` on every trait that
    /// judges it: a trait with questions of its own on its questions' answers, any other trait
    /// on every answer.
    func fullyJudged(_ r: RunID, step: Int, judge: String) throws(PipelineError) -> Bool {
        let e = experiment, samples = e.evaluation.samples
        let answers = try store.answerCount(r, step: step)
        let expected = e.evaluation.questions.count * samples
        guard answers == expected else { return false }
        let verdicts = try store.verdictCount(r, step: step, judge: judge)
        let owed = e.judges.traits.reduce(0) { $0 + (e.judges.questionIDs(for: $1).map { $0.count * samples } ?? answers) }
        return verdicts == owed
    }

    /// Summarises each fully judged checkpoint once per judge, in one transaction each.
    func aggregateStage() throws -> Int {
        let e = experiment
        var done = 0
        for r in e.runs {
            for ck in try store.checkpoints(r) {
                for judge in judgeNames {
                    let unit = "\(r)/step-\(ck.step)/\(judge)"
                    if try store.isDone(stage: "aggregate", unit: unit) { continue }
                    guard try fullyJudged(r, step: ck.step, judge: judge) else { continue }
                    let t0 = Date()
                    let verdicts = try store.judgments(r, step: ck.step, judge: judge)
                    let (traits, mis) = Aggregation.aggregate(verdicts, traits: e.judges.traits, settings: e.aggregation)
                    try store.transaction {
                        for t in traits { try store.addAggregate(r, step: ck.step, judge: judge, t) }
                        try store.addMisaligned(r, step: ck.step, judge: judge, mis)
                        try store.finish(stage: "aggregate", unit: unit, items: 1, seconds: Date().timeIntervalSince(t0))
                    }
                    done += 1
                    StageHooks.unitDone("aggregate")
                }
                if try aggregateMean(r, step: ck.step) { done += 1 }
            }
        }
        return done + (try aggregateProjections())
    }

    /// With two or more judges, the per-answer mean of the judges (`Aggregation.meanVerdicts`)
    /// stored as the judge `mean`, once every judge has fully judged the checkpoint.
    func aggregateMean(_ r: RunID, step: Int) throws -> Bool {
        let e = experiment, mean = DetectionSettings.meanJudge
        guard judgeNames.count >= 2 else { return false }
        let unit = "\(r)/step-\(step)/\(mean)"
        if try store.isDone(stage: "aggregate", unit: unit) { return false }
        for judge in judgeNames where try !fullyJudged(r, step: step, judge: judge) { return false }
        let t0 = Date()
        let verdicts = try store.meanJudgments(r, step: step, judges: judgeNames)
        let (traits, mis) = Aggregation.aggregate(verdicts, traits: e.judges.traits, settings: e.aggregation)
        try store.transaction {
            for t in traits { try store.addAggregate(r, step: step, judge: mean, t) }
            try store.addMisaligned(r, step: step, judge: mean, mis)
            try store.finish(stage: "aggregate", unit: unit, items: 1, seconds: Date().timeIntervalSince(t0))
        }
        StageHooks.unitDone("aggregate")
        return true
    }

    /// Onsets per signal and method, and the lead-lag with bootstrap intervals, for each run
    /// whose training is finished and whose every checkpoint is aggregated; then the lag's
    /// summary across the seeds of each dataset.
    func detectStage() throws -> Int {
        let e = experiment
        guard let judge = e.detection.judge else { return 0 }
        var config = e.detection.onsetConfig(traits: e.judges.traits, adding: components.onsetRules)
        let judgedSignals = config.signals.map(\.name)
        // Projection signals (`evil@proj`, ...): per-answer records beside the judged ones,
        // through the same rules, intervals and lag (ProjectionStages.swift).
        config.signals += projectionSignals
        // Adapter signals (`adapter_norm`, ...) that `detection.directions` names: point onsets
        // from the stored dynamics, beside the judged signals (DynamicsStage.swift).
        let adapterSignals = e.detection.adapterDynamics ? e.detection.adapterSignals.map { $0.signal.rawValue } : []
        guard !config.signals.isEmpty || !adapterSignals.isEmpty else { return 0 }
        var done = 0
        for r in e.runs {
            let unit = "\(r)/\(judge)"
            if try store.isDone(stage: "detect", unit: unit) { continue }
            guard try store.runState(r)?.trained == true else { continue }
            let cks = try store.checkpoints(r)
            var complete = !cks.isEmpty
            for ck in cks where try !store.isDone(stage: "aggregate", unit: "\(r)/step-\(ck.step)/\(judge)") { complete = false }
            guard complete else { continue }
            if !adapterSignals.isEmpty, try !dynamicsComplete(r) { continue }
            try checkCancelled("detect")
            let t0 = Date()
            let records = (judge == DetectionSettings.meanJudge
                ? try store.meanScoreRecords(r, judges: judgeNames, traits: judgedSignals)
                : try store.scoreRecords(r, judge: judge, traits: judgedSignals)) + (try projectionRecords(r))
            // Every verdict of a signal unscorable (no numeric mass, unparseable, refused): no
            // onset can be found, now or on a later call, so the run is done with a failure.
            let unscored = judgedSignals.filter { s in !records.contains { $0.signal == s } }
            if !unscored.isEmpty {
                let detail = "no scored verdicts for \(unscored.joined(separator: ", ")) (every verdict unscorable); no onsets"
                note("detect \(r): \(detail); see the judgments' status and detail, or judges.min_numeric_mass")
                try store.transaction {
                    try store.finish(stage: "detect", unit: unit, items: 0, seconds: Date().timeIntervalSince(t0), failure: detail)
                }
                done += 1
                continue
            }
            var report = OnsetReport(dataset: r.dataset, seed: r.seed, signals: [], lagSteps: nil, lagInterval: nil,
                                     probabilityLagPositive: nil, resamples: 0)
            if !config.signals.isEmpty {
                do {
                    guard let rep = try OnsetAnalysis.analyze(records: records, config: config).first else { continue }
                    report = rep
                } catch {
                    throw PipelineError.stage(stage: "detect", unit: "\(r)", reason: "\(error.description); with \(cks.count) checkpoints, "
                                              + "choose detection.methods that fit (zscore, cusum and bocpd need more than 10)")
                }
            }
            if !adapterSignals.isEmpty {
                report.signals += try adapterOnsets(r, config: config)
                // A lag with an adapter signal at either end is a point estimate: those have no interval.
                if adapterSignals.contains(config.leadSignal) || adapterSignals.contains(config.lagSignal) {
                    let lead = report.signals.first { $0.signal == config.leadSignal }?.consensusStep
                    let lag = report.signals.first { $0.signal == config.lagSignal }?.consensusStep
                    report.lagSteps = lead.flatMap { a in lag.map { $0 - a } }
                    report.lagInterval = nil; report.probabilityLagPositive = nil
                }
            }
            try store.transaction {
                try store.addOnsets(r, judge: judge, report)
                try store.finish(stage: "detect", unit: unit, items: 1, seconds: Date().timeIntervalSince(t0))
            }
            done += 1
            StageHooks.unitDone("detect")
        }
        if done > 0 { try store.transaction { try store.updateLagSummaries(judge: judge) } }
        return done
    }
}
