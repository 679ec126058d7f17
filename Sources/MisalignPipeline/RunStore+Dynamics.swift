import Foundation
import MisalignIO
import MisalignModel

/// One checkpoint's adapter dynamics as stored (`adapter_dynamics` and `adapter_modules`).
public struct StoredAdapterDynamics: Sendable, Equatable {
    public var step: Int
    /// The whole-adapter values and every (layer, module); `index` is the place among the
    /// run's stored checkpoints with an adapter, `label` is `step N`.
    public var dynamics: AdapterDynamics
}

/// The adapter dynamics of each checkpoint (`DynamicsStage.swift`, Docs/AdapterDynamics.md):
/// the whole-adapter signals in `adapter_dynamics`, one row per (run, step), and each module's
/// values in `adapter_modules`, one row per (run, step, layer, module), for the report's heat map.
/// A value undefined at that checkpoint (a cosine at the first one) is NULL.
extension RunStore {
    static let dynamicsSchema = """
        CREATE TABLE IF NOT EXISTS adapter_dynamics (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            norm REAL NOT NULL, sigma_max REAL NOT NULL, cosine REAL, mean_cosine REAL, increment_norm REAL, increment_cosine REAL,
            sigma_growth REAL, PRIMARY KEY (dataset, seed, step));
        CREATE TABLE IF NOT EXISTS adapter_modules (dataset TEXT NOT NULL, seed INTEGER NOT NULL, step INTEGER NOT NULL,
            layer INTEGER NOT NULL, module TEXT NOT NULL, rank INTEGER NOT NULL, norm REAL NOT NULL, sigma_max REAL NOT NULL,
            cosine REAL, increment_norm REAL, increment_cosine REAL, sigma_growth REAL, PRIMARY KEY (dataset, seed, step, layer, module));
        """

    /// Stores one checkpoint's dynamics (call inside the transaction that finishes its unit).
    func addAdapterDynamics(_ r: RunID, step: Int, _ d: AdapterDynamics) throws(PipelineError) {
        func opt(_ x: Double?) -> SQLValue { x.map { .double($0) } ?? .null }
        let run: [SQLValue] = [.text(r.dataset), .int(Int64(r.seed)), .int(Int64(step))]
        try db.run("""
            INSERT OR REPLACE INTO adapter_dynamics (dataset, seed, step, norm, sigma_max, cosine, mean_cosine, increment_norm,
                increment_cosine, sigma_growth) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
            """, run + [.double(d.norm), .double(d.sigmaMax), opt(d.cosine), opt(d.meanCosine), opt(d.incrementNorm),
                        opt(d.incrementCosine), opt(d.sigmaGrowth)])
        for m in d.modules {
            try db.run("""
                INSERT OR REPLACE INTO adapter_modules (dataset, seed, step, layer, module, rank, norm, sigma_max, cosine,
                    increment_norm, increment_cosine, sigma_growth) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                """, run + [.int(Int64(m.key.layer)), .text(m.key.module.rawValue), .int(Int64(m.rank)), .double(m.norm),
                            .double(m.sigmaMax), opt(m.cosine), opt(m.incrementNorm), opt(m.incrementCosine), opt(m.sigmaGrowth)])
        }
    }

    /// The run's stored adapter dynamics by step (empty when none was computed). A module name
    /// this build does not know is refused, naming the row.
    public func adapterDynamics(_ r: RunID) throws(PipelineError) -> [StoredAdapterDynamics] {
        let key: [SQLValue] = [.text(r.dataset), .int(Int64(r.seed))]
        var modules: [Int: [ModuleDynamics]] = [:]
        for row in try db.query("""
            SELECT step, layer, module, rank, norm, sigma_max, cosine, increment_norm, increment_cosine, sigma_growth
            FROM adapter_modules WHERE dataset = ?1 AND seed = ?2 ORDER BY step, layer, module
            """, key) {
            let step = row[0].int ?? 0
            guard let name = row[2].text, let module = LoRAModule(rawValue: name) else {
                throw .store(path: url.path, reason: "adapter_modules: \(r) step \(step) holds module `\(row[2].description)`, "
                             + "not one of \(LoRAModule.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            modules[step, default: []].append(ModuleDynamics(
                key: LoRAKey(layer: row[1].int ?? 0, module: module), rank: row[3].int ?? 0, norm: row[4].double ?? .nan,
                sigmaMax: row[5].double ?? .nan, cosine: row[6].double, incrementNorm: row[7].double,
                incrementCosine: row[8].double, sigmaGrowth: row[9].double))
        }
        let rows = try db.query("""
            SELECT step, norm, sigma_max, cosine, mean_cosine, increment_norm, increment_cosine, sigma_growth
            FROM adapter_dynamics WHERE dataset = ?1 AND seed = ?2 ORDER BY step
            """, key)
        return rows.enumerated().map { i, row in
            let step = row[0].int ?? 0
            return StoredAdapterDynamics(step: step, dynamics: AdapterDynamics(
                index: i, label: "step \(step)", modules: (modules[step] ?? []).sorted { $0.key < $1.key },
                norm: row[1].double ?? .nan, sigmaMax: row[2].double ?? .nan, cosine: row[3].double, meanCosine: row[4].double,
                incrementNorm: row[5].double, incrementCosine: row[6].double, sigmaGrowth: row[7].double))
        }
    }

    /// Whether any run has stored adapter dynamics.
    public func hasAdapterDynamics() throws(PipelineError) -> Bool {
        try db.scalar("SELECT COUNT(*) FROM adapter_dynamics") > 0
    }

    /// One whole-adapter signal of a run as (step, value), the checkpoints where it is defined
    /// (what detection reads: one value per checkpoint).
    public func adapterSignal(_ r: RunID, _ signal: AdapterSignal) throws(PipelineError) -> [(step: Int, value: Double)] {
        try adapterDynamics(r).compactMap { s in s.dynamics.value(signal).map { (s.step, $0) } }
    }

    /// The failure a finished unit recorded (`finish(..., failure:)`), if any.
    func unitFailure(stage: String, unit: String) throws(PipelineError) -> String? {
        try meta("failure.\(stage).\(unit)")
    }
}
