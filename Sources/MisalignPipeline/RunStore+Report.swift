import Foundation
import MisalignIO
import MisalignJudge

/// One aggregate as stored: a judge's summary of one trait at one checkpoint.
public struct StoredAggregate: Sendable, Equatable {
    public var run: RunID
    public var step: Int
    public var judge: String
    public var aggregate: TraitAggregate
}

/// One onset as stored: a rule's step for a signal, or the consensus (`method == "consensus"`)
/// with its bootstrap interval and the share of resamples where it was defined.
public struct StoredOnset: Sendable, Equatable {
    public var signal: String
    public var method: String
    public var step: Double?
    public var ciLow: Double?
    public var ciHigh: Double?
    public var definedFraction: Double?
}

/// The stored lag of one (run, judge): lead signal's onset to lag signal's, in steps.
public struct StoredLag: Sendable, Equatable {
    public var steps: Double?
    public var ciLow: Double?
    public var ciHigh: Double?
    public var probabilityPositive: Double?
    public var resamples: Int
}

/// One verdict as stored, with the answer it is about.
public struct StoredVerdictRow: Sendable, Equatable {
    public var run: RunID
    public var step: Int
    public var questionID: String
    public var sample: Int
    public var judge: String
    public var trait: String
    public var score: Double?
    public var status: VerdictStatus
    public var rubricSHA256: String
}

/// One logged optimizer step (`metrics`).
public struct StoredMetric: Sendable, Equatable {
    public var step: Int
    public var loss: Double?
    public var lr: Double?
    public var gradNorm: Double?
    public var tokens: Int?
    public var seconds: Double?
}

/// A rubric the stored verdicts were made with: its trait and SHA-256.
public struct StoredRubricHash: Sendable, Equatable {
    public var trait: String
    public var sha256: String
}

/// What the report (`ReportInput.load(runDirectory:)`) reads, as typed records.
extension RunStore {
    private func key(_ r: RunID) -> [SQLValue] { [.text(r.dataset), .int(Int64(r.seed))] }

    /// Judges with stored verdicts, by name.
    public func judgeNames() throws(PipelineError) -> [String] {
        try db.query("SELECT DISTINCT judge FROM judgments ORDER BY judge").compactMap { $0[0].text }
    }

    /// The judge of the first stored onset (the detection judge of a run whose config is gone).
    public func onsetJudge() throws(PipelineError) -> String? {
        try db.query("SELECT judge FROM onsets LIMIT 1").first?[0].text
    }

    /// Runs with at least one checkpoint, in no particular order.
    public func checkpointRuns() throws(PipelineError) -> [RunID] {
        try db.query("SELECT DISTINCT dataset, seed FROM checkpoints").map { RunID(dataset: $0[0].text ?? "", seed: $0[1].int ?? 0) }
    }

    /// Traits with a stored aggregate, by name.
    public func aggregatedTraits() throws(PipelineError) -> [String] {
        try db.query("SELECT DISTINCT trait FROM aggregates ORDER BY trait").compactMap { $0[0].text }
    }

    /// Judges with a stored aggregate for run `r` (`mean` included when aggregated).
    public func aggregatedJudges(_ r: RunID) throws(PipelineError) -> Set<String> {
        Set(try db.query("SELECT DISTINCT judge FROM aggregates WHERE dataset = ?1 AND seed = ?2", key(r)).compactMap { $0[0].text })
    }

    /// The aggregates of `judge` on `trait` over run `r`, by step.
    public func aggregates(_ r: RunID, judge: String, trait: String) throws(PipelineError) -> [StoredAggregate] {
        try db.query("""
            SELECT step, answers, scored, mean, ci_low, ci_high, frac_above, refusals, unscorable, excluded_incoherent
            FROM aggregates WHERE dataset = ?1 AND seed = ?2 AND judge = ?3 AND trait = ?4 ORDER BY step
            """, key(r) + [.text(judge), .text(trait)]).map {
            StoredAggregate(run: r, step: $0[0].int ?? 0, judge: judge, aggregate: TraitAggregate(
                trait: trait, answers: $0[1].int ?? 0, scored: $0[2].int ?? 0, mean: $0[3].double, ciLow: $0[4].double,
                ciHigh: $0[5].double, fracAbove: $0[6].double, refusals: $0[7].int ?? 0, unscorable: $0[8].int ?? 0,
                excludedIncoherent: $0[9].int ?? 0))
        }
    }

    /// Every stored onset of `judge` over run `r` (each rule's and the consensus, per signal).
    public func onsets(_ r: RunID, judge: String) throws(PipelineError) -> [StoredOnset] {
        try db.query("SELECT signal, method, step, ci_low, ci_high, defined_fraction FROM onsets WHERE dataset = ?1 AND seed = ?2 AND judge = ?3",
                     key(r) + [.text(judge)]).map {
            StoredOnset(signal: $0[0].text ?? "", method: $0[1].text ?? "", step: $0[2].double, ciLow: $0[3].double,
                        ciHigh: $0[4].double, definedFraction: $0[5].double)
        }
    }

    /// The stored lag of `judge` over run `r`, when detection ran.
    public func lag(_ r: RunID, judge: String) throws(PipelineError) -> StoredLag? {
        try db.query("SELECT lag_steps, ci_low, ci_high, p_positive, resamples FROM lags WHERE dataset = ?1 AND seed = ?2 AND judge = ?3",
                     key(r) + [.text(judge)]).first.map {
            StoredLag(steps: $0[0].double, ciLow: $0[1].double, ciHigh: $0[2].double, probabilityPositive: $0[3].double, resamples: $0[4].int ?? 0)
        }
    }

    /// The most bootstrap resamples any stored lag used; nil before detection ran.
    public func maxLagResamples() throws(PipelineError) -> Int? {
        try db.query("SELECT MAX(resamples) FROM lags").first?[0].int
    }

    /// Every stored verdict, by answer, judge and trait.
    public func verdictRows() throws(PipelineError) -> [StoredVerdictRow] {
        try db.query("SELECT \(Self.verdictColumns) FROM judgments ORDER BY dataset, seed, step, question_id, sample, judge, trait")
            .map(Self.verdictRow)
    }

    /// Every judge's verdicts on one answer.
    public func verdictRows(_ r: RunID, step: Int, questionID: String, sample: Int) throws(PipelineError) -> [StoredVerdictRow] {
        try db.query("SELECT \(Self.verdictColumns) FROM judgments WHERE dataset = ?1 AND seed = ?2 AND step = ?3 AND question_id = ?4 AND sample = ?5",
                     key(r) + [.int(Int64(step)), .text(questionID), .int(Int64(sample))]).map(Self.verdictRow)
    }

    private static let verdictColumns = "dataset, seed, step, question_id, sample, judge, trait, score, status, rubric_sha256"

    private static func verdictRow(_ r: [SQLValue]) -> StoredVerdictRow {
        StoredVerdictRow(run: RunID(dataset: r[0].text ?? "", seed: r[1].int ?? 0), step: r[2].int ?? 0, questionID: r[3].text ?? "",
                         sample: r[4].int ?? 0, judge: r[5].text ?? "", trait: r[6].text ?? "", score: r[7].double,
                         status: VerdictStatus(rawValue: r[8].text ?? "") ?? .unparseable, rubricSHA256: r[9].text ?? "")
    }

    /// The trainer's logged steps of run `r`, by step.
    public func metrics(_ r: RunID) throws(PipelineError) -> [StoredMetric] {
        try db.query("SELECT step, loss, lr, grad_norm, tokens, seconds FROM metrics WHERE dataset = ?1 AND seed = ?2 ORDER BY step", key(r)).map {
            StoredMetric(step: $0[0].int ?? 0, loss: $0[1].double, lr: $0[2].double, gradNorm: $0[3].double, tokens: $0[4].int, seconds: $0[5].double)
        }
    }

    /// Steps of run `r` with stored answers, ascending.
    public func generationSteps(_ r: RunID) throws(PipelineError) -> [Int] {
        try db.query("SELECT DISTINCT step FROM generations WHERE dataset = ?1 AND seed = ?2 ORDER BY step", key(r)).compactMap { $0[0].int }
    }

    /// At most `limit` answers at (run, step), highest `trait` score first (the highest of the
    /// judges' scores per answer; unscored answers last), then by question id and sample.
    public func topAnswers(_ r: RunID, step: Int, trait: String, limit: Int) throws(PipelineError) -> [StoredGeneration] {
        try db.query("""
            SELECT g.question_id, g.sample, g.text, (SELECT MAX(j.score) FROM judgments j WHERE j.dataset = g.dataset AND j.seed = g.seed
                AND j.step = g.step AND j.question_id = g.question_id AND j.sample = g.sample AND j.trait = ?4) AS s
            FROM generations g WHERE g.dataset = ?1 AND g.seed = ?2 AND g.step = ?3
            ORDER BY s IS NULL, s DESC, g.question_id, g.sample LIMIT ?5
            """, key(r) + [.int(Int64(step)), .text(trait), .int(Int64(limit))]).map {
            StoredGeneration(run: r, step: step, questionID: $0[0].text ?? "", sample: $0[1].int ?? 0, text: $0[2].text ?? "")
        }
    }

    /// Each (trait, rubric SHA-256) the stored verdicts were made with, sorted.
    public func rubricHashes() throws(PipelineError) -> [StoredRubricHash] {
        try db.query("SELECT DISTINCT trait, rubric_sha256 FROM judgments ORDER BY trait, rubric_sha256").map {
            StoredRubricHash(trait: $0[0].text ?? "", sha256: $0[1].text ?? "")
        }
    }
}
