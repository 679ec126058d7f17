import Foundation
import MisalignIO

/// A per-checkpoint summary of one projection (`projection_aggregates`): the mean over the
/// answers with a value, and its normal-approximation interval (as `TraitAggregate`'s).
public struct StoredProjectionAggregate: Sendable, Equatable {
    public var step: Int
    public var trait: String
    public var layer: Int
    public var kind: ProjectionRow.Kind
    /// Answers at the checkpoint, and those with a value (a response with no token read back has none).
    public var answers: Int
    public var projected: Int
    public var mean: Double?
    public var ciLow: Double?
    public var ciHigh: Double?
}

/// Trait-vector projections of the answers (`ActivationSettings`, Docs/ActivationSignals.md):
/// `projections` holds one row per (answer, trait, layer, kind), written in the transaction
/// that stores the answer; `projection_aggregates` the per-checkpoint means the aggregate
/// stage computes from them.
extension RunStore {
    static let projectionSchema = """
        CREATE TABLE IF NOT EXISTS projections (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            question_id TEXT NOT NULL, sample INTEGER NOT NULL, trait TEXT NOT NULL, layer INTEGER NOT NULL, kind TEXT NOT NULL,
            value REAL, PRIMARY KEY (dataset, seed, step, question_id, sample, trait, layer, kind));
        CREATE TABLE IF NOT EXISTS projection_aggregates (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            trait TEXT NOT NULL, layer INTEGER NOT NULL, kind TEXT NOT NULL, answers INTEGER NOT NULL, projected INTEGER NOT NULL,
            mean REAL, ci_low REAL, ci_high REAL, PRIMARY KEY (dataset, seed, step, trait, layer, kind));
        """

    private func runKey(_ r: RunID) -> [SQLValue] { [.text(r.dataset), .int(Int64(r.seed))] }

    /// Stores one answer's projections (call inside the transaction that stores the answer).
    func addProjections(_ r: RunID, step: Int, questionID: String, sample: Int, _ rows: [ProjectionRow]) throws(PipelineError) {
        for p in rows {
            try db.run("""
                INSERT OR REPLACE INTO projections (dataset, seed, step, question_id, sample, trait, layer, kind, value)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                """, runKey(r) + [.int(Int64(step)), .text(questionID), .int(Int64(sample)), .text(p.trait), .int(Int64(p.layer)),
                                  .text(p.kind.rawValue), p.value.map { .double($0) } ?? .null])
        }
    }

    /// Stored answers with no projection onto `trait` (answers generated before the
    /// activations section named it).
    func unprojectedAnswerCount(trait: String) throws(PipelineError) -> Int {
        try db.scalar("""
            SELECT COUNT(*) FROM generations g WHERE NOT EXISTS (SELECT 1 FROM projections p WHERE p.dataset = g.dataset
                AND p.seed = g.seed AND p.step = g.step AND p.question_id = g.question_id AND p.sample = g.sample AND p.trait = ?1)
            """, [.text(trait)])
    }

    /// The projections of one (trait, layer, kind) over run `r` as (step, question, sample,
    /// value), by step, question and sample.
    public func projections(_ r: RunID, trait: String, layer: Int, kind: ProjectionRow.Kind = .response) throws(PipelineError)
        -> [(step: Int, questionID: String, sample: Int, value: Double?)] {
        try db.query("""
            SELECT step, question_id, sample, value FROM projections WHERE dataset = ?1 AND seed = ?2 AND trait = ?3 AND layer = ?4
                AND kind = ?5 ORDER BY step, question_id, sample
            """, runKey(r) + [.text(trait), .int(Int64(layer)), .text(kind.rawValue)]).map {
            ($0[0].int ?? 0, $0[1].text ?? "", $0[2].int ?? 0, $0[3].double)
        }
    }

    /// The projections of one answer, by trait, layer and kind.
    public func projections(_ r: RunID, step: Int, questionID: String, sample: Int) throws(PipelineError) -> [ProjectionRow] {
        try db.query("""
            SELECT trait, layer, kind, value FROM projections WHERE dataset = ?1 AND seed = ?2 AND step = ?3 AND question_id = ?4
                AND sample = ?5 ORDER BY trait, layer, kind
            """, runKey(r) + [.int(Int64(step)), .text(questionID), .int(Int64(sample))]).map {
            ProjectionRow(trait: $0[0].text ?? "", layer: $0[1].int ?? 0, kind: ProjectionRow.Kind(rawValue: $0[2].text ?? "") ?? .response,
                          value: $0[3].double)
        }
    }

    /// Projection rows stored at (run, step).
    func projectionCount(_ r: RunID, step: Int) throws(PipelineError) -> Int {
        try db.scalar("SELECT COUNT(*) FROM projections WHERE dataset = ?1 AND seed = ?2 AND step = ?3", runKey(r) + [.int(Int64(step))])
    }

    func addProjectionAggregate(_ r: RunID, _ a: StoredProjectionAggregate) throws(PipelineError) {
        func opt(_ d: Double?) -> SQLValue { d.map { .double($0) } ?? .null }
        try db.run("""
            INSERT OR REPLACE INTO projection_aggregates (dataset, seed, step, trait, layer, kind, answers, projected, mean, ci_low, ci_high)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
            """, runKey(r) + [.int(Int64(a.step)), .text(a.trait), .int(Int64(a.layer)), .text(a.kind.rawValue), .int(Int64(a.answers)),
                              .int(Int64(a.projected)), opt(a.mean), opt(a.ciLow), opt(a.ciHigh)])
    }

    /// The per-checkpoint projection means of run `r` onto `trait` at `layer`, by step.
    public func projectionAggregates(_ r: RunID, trait: String, layer: Int, kind: ProjectionRow.Kind = .response) throws(PipelineError)
        -> [StoredProjectionAggregate] {
        try db.query("""
            SELECT step, answers, projected, mean, ci_low, ci_high FROM projection_aggregates WHERE dataset = ?1 AND seed = ?2
                AND trait = ?3 AND layer = ?4 AND kind = ?5 ORDER BY step
            """, runKey(r) + [.text(trait), .int(Int64(layer)), .text(kind.rawValue)]).map {
            StoredProjectionAggregate(step: $0[0].int ?? 0, trait: trait, layer: layer, kind: kind, answers: $0[1].int ?? 0,
                                      projected: $0[2].int ?? 0, mean: $0[3].double, ciLow: $0[4].double, ciHigh: $0[5].double)
        }
    }

    /// (trait, layer) pairs with stored projection aggregates, by trait and layer.
    public func projectedTraitLayers() throws(PipelineError) -> [(trait: String, layer: Int)] {
        try db.query("SELECT DISTINCT trait, layer FROM projection_aggregates ORDER BY trait, layer").map { ($0[0].text ?? "", $0[1].int ?? 0) }
    }
}

extension RunStore {
    /// Every projection stored at (run, step).
    func projectionRows(_ r: RunID, step: Int) throws(PipelineError) -> [ProjectionRow] {
        try db.query("""
            SELECT trait, layer, kind, value FROM projections WHERE dataset = ?1 AND seed = ?2 AND step = ?3
                ORDER BY trait, layer, kind, question_id, sample
            """, [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(step))]).map {
            ProjectionRow(trait: $0[0].text ?? "", layer: $0[1].int ?? 0, kind: ProjectionRow.Kind(rawValue: $0[2].text ?? "") ?? .response,
                          value: $0[3].double)
        }
    }
}

extension RunStore {
    /// The hidden-state index a trait's projection signal reads (its vector's layer), recorded
    /// when the generate stage first reads the vector; nil before.
    public func projectionLayer(trait: String) throws(PipelineError) -> Int? {
        try meta(Self.projectionLayerKey(trait)).flatMap { Int($0) }
    }

    func setProjectionLayer(trait: String, _ layer: Int) throws(PipelineError) {
        try setMeta(Self.projectionLayerKey(trait), String(layer))
    }

    static func projectionLayerKey(_ trait: String) -> String { "activations.layer.\(trait)" }
}
