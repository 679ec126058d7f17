import Foundation
import MisalignChangePoint
import MisalignIO
import MisalignJudge

extension RunStore {
    func addAggregate(_ r: RunID, step: Int, judge: String, _ a: TraitAggregate) throws(PipelineError) {
        func opt(_ d: Double?) -> SQLValue { d.map { .double($0) } ?? .null }
        try db.run("""
            INSERT OR REPLACE INTO aggregates (dataset, seed, step, judge, trait, answers, scored, mean, ci_low, ci_high, frac_above,
                refusals, unscorable, excluded_incoherent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
            """, [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(step)), .text(judge), .text(a.trait), .int(Int64(a.answers)),
                  .int(Int64(a.scored)), opt(a.mean), opt(a.ciLow), opt(a.ciHigh), opt(a.fracAbove), .int(Int64(a.refusals)),
                  .int(Int64(a.unscorable)), .int(Int64(a.excludedIncoherent))])
    }

    func addMisaligned(_ r: RunID, step: Int, judge: String, _ m: MisalignedCount) throws(PipelineError) {
        try db.run("INSERT OR REPLACE INTO misaligned (dataset, seed, step, judge, evaluated, misaligned, fraction) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                   [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(step)), .text(judge), .int(Int64(m.evaluated)),
                    .int(Int64(m.misaligned)), m.fraction.map { .double($0) } ?? .null])
    }

    /// The judges' verdicts at (run, step) combined per answer (`Aggregation.meanVerdicts`).
    func meanJudgments(_ r: RunID, step: Int, judges: [String]) throws(PipelineError) -> [StoredJudgment] {
        var byJudge: [[StoredJudgment]] = []
        for j in judges { byJudge.append(try judgments(r, step: step, judge: j)) }
        return Aggregation.meanVerdicts(byJudge)
    }

    /// Per-answer means of the judges' scores over a whole run, as change-point records
    /// (detection with `detection.judge: mean`).
    func meanScoreRecords(_ r: RunID, judges: [String], traits: [String]) throws(PipelineError) -> [ScoreRecord] {
        var out: [ScoreRecord] = []
        for ck in try checkpoints(r) {
            for v in try meanJudgments(r, step: ck.step, judges: judges) where v.status == .ok && traits.contains(v.trait) {
                guard let s = v.score else { continue }
                out.append(ScoreRecord(signal: v.trait, step: ck.step, questionID: v.questionID, sample: v.sample, score: s,
                                       dataset: r.dataset, seed: r.seed))
            }
        }
        return out
    }

    /// Every rule's onset and the consensus (with its bootstrap interval) per signal, and the lag.
    func addOnsets(_ r: RunID, judge: String, _ rep: OnsetReport) throws(PipelineError) {
        func opt(_ d: Double?) -> SQLValue { d.map { .double($0) } ?? .null }
        let sql = """
            INSERT OR REPLACE INTO onsets (dataset, seed, judge, signal, method, step, ci_low, ci_high, defined_fraction)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
            """
        for s in rep.signals {
            for m in s.methods {
                try db.run(sql, [.text(r.dataset), .int(Int64(r.seed)), .text(judge), .text(s.signal), .text(m.method),
                                 opt(m.step.map(Double.init)), .null, .null, .null])
            }
            try db.run(sql, [.text(r.dataset), .int(Int64(r.seed)), .text(judge), .text(s.signal), .text("consensus"),
                             opt(s.consensusStep), opt(s.interval?.low), opt(s.interval?.high), opt(s.interval?.definedFraction)])
        }
        try db.run("""
            INSERT OR REPLACE INTO lags (dataset, seed, judge, lag_steps, ci_low, ci_high, p_positive, resamples)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
            """, [.text(r.dataset), .int(Int64(r.seed)), .text(judge), opt(rep.lagSteps), opt(rep.lagInterval?.low),
                  opt(rep.lagInterval?.high), opt(rep.probabilityLagPositive), .int(Int64(rep.resamples))])
    }

    /// Recomputes the across-seeds lag summary of every dataset from the stored lags.
    func updateLagSummaries(judge: String) throws(PipelineError) {
        let rows = try db.query("SELECT dataset, seed, lag_steps FROM lags WHERE judge = ?1 ORDER BY dataset, seed", [.text(judge)])
        let datasets = Array(Set(rows.compactMap { $0[0].text })).sorted()
        for d in datasets {
            let mine = rows.filter { $0[0].text == d }
            let reports = mine.map { OnsetReport(dataset: d, seed: $0[1].int, signals: [], lagSteps: $0[2].double, lagInterval: nil,
                                                 probabilityLagPositive: nil, resamples: 0) }
            let s = SeedSummary(dataset: d, reports: reports)
            try db.run("""
                INSERT OR REPLACE INTO lag_summary (dataset, judge, seeds, median_lag, positive, negative, sign_test_p)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                """, [.text(d), .text(judge), .int(Int64(mine.count)), s.medianLag.map { .double($0) } ?? .null,
                      .int(Int64(s.positive)), .int(Int64(s.negative)), s.signTestP.map { .double($0) } ?? .null])
        }
    }

    /// Drops every aggregate, onset and lag (and their units), to be recomputed.
    func resetAnalysis() throws(PipelineError) {
        for t in ["aggregates", "misaligned", "onsets", "lags", "lag_summary", "projection_aggregates"] { try db.run("DELETE FROM \(t)") }
        try db.run("DELETE FROM units WHERE stage IN ('aggregate', 'detect')")
        try db.run("DELETE FROM meta WHERE key LIKE 'failure.aggregate.%' OR key LIKE 'failure.detect.%'")
    }
}
