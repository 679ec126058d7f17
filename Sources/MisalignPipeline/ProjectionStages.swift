import Foundation
import MisalignChangePoint
import MisalignIO

/// The projection signals' share of the aggregate and detect stages (`ActivationSettings`,
/// Docs/ActivationSignals.md).
extension PipelineRunner {
    /// Summarises the projections of each checkpoint whose answers are all stored, once: per
    /// (trait, layer, kind), the mean over answers with a value and its normal interval at
    /// `aggregation.confidence`.
    func aggregateProjections() throws -> Int {
        let e = experiment
        guard e.activations.isEnabled else { return 0 }
        let expected = e.evaluation.questions.count * e.evaluation.samples
        let z = Aggregation.normalQuantile(0.5 + e.aggregation.confidence / 2)
        var done = 0
        for r in e.runs {
            for ck in try store.checkpoints(r) {
                let unit = "\(r)/step-\(ck.step)/\(ActivationSettings.suffix)"
                if try store.isDone(stage: "aggregate", unit: unit) { continue }
                guard try store.answerCount(r, step: ck.step) == expected else { continue }
                let t0 = Date()
                var groups: [String: (trait: String, layer: Int, kind: ProjectionRow.Kind, values: [Double], answers: Int)] = [:]
                for row in try store.projectionRows(r, step: ck.step) {
                    let key = "\(row.trait)\u{1F}\(row.layer)\u{1F}\(row.kind.rawValue)"
                    var g = groups[key] ?? (row.trait, row.layer, row.kind, [], 0)
                    g.answers += 1
                    if let v = row.value { g.values.append(v) }
                    groups[key] = g
                }
                try store.transaction {
                    for key in groups.keys.sorted() {
                        let g = groups[key]!
                        let (mean, lo, hi) = Aggregation.meanInterval(g.values, z: z)
                        try store.addProjectionAggregate(r, StoredProjectionAggregate(
                            step: ck.step, trait: g.trait, layer: g.layer, kind: g.kind, answers: g.answers, projected: g.values.count,
                            mean: mean, ciLow: lo, ciHigh: hi))
                    }
                    try store.finish(stage: "aggregate", unit: unit, items: 1, seconds: Date().timeIntervalSince(t0))
                }
                done += 1
                StageHooks.unitDone("aggregate")
            }
        }
        return done
    }

    /// The projection signals detection runs on, each with its direction: the signal's own
    /// entry in `detection.directions`, else its trait's, else up.
    var projectionSignals: [SignalSpec] {
        let d = experiment.detection.directions
        return experiment.activations.vectors.map { v in
            let s = ActivationSettings.signal(v.trait)
            return SignalSpec(s, d[s] ?? d[v.trait] ?? .up)
        }
    }

    /// Change-point records of run `r`'s projection signals: every answer's response
    /// projection at its vector's layer, mapped linearly onto [0, detection.scale] by the
    /// lowest and highest per-checkpoint mean of the run (the onset rules' thresholds are in
    /// points of that scale; the stored curves keep the hidden state's units). A signal whose
    /// means are all equal maps to 0.
    func projectionRecords(_ r: RunID) throws -> [ScoreRecord] {
        var out: [ScoreRecord] = []
        let scale = experiment.detection.scale
        for v in experiment.activations.vectors {
            guard let layer = try store.projectionLayer(trait: v.trait) else {
                throw PipelineError.stage(stage: "detect", unit: "\(r)", reason: "no layer recorded for \(ActivationSettings.signal(v.trait)); "
                                          + "the generate stage records it when it first reads the vector")
            }
            let rows = try store.projections(r, trait: v.trait, layer: layer).compactMap { p in p.value.map { (p, $0) } }
            var sums: [Int: (Double, Int)] = [:]
            for (p, x) in rows { let s = sums[p.step] ?? (0, 0); sums[p.step] = (s.0 + x, s.1 + 1) }
            let means = sums.values.map { $0.0 / Double($0.1) }
            guard let lo = means.min(), let hi = means.max() else { continue }
            let signal = ActivationSettings.signal(v.trait)
            for (p, x) in rows {
                out.append(ScoreRecord(signal: signal, step: p.step, questionID: p.questionID, sample: p.sample,
                                       score: hi > lo ? scale * (x - lo) / (hi - lo) : 0, dataset: r.dataset, seed: r.seed))
            }
        }
        return out
    }
}
