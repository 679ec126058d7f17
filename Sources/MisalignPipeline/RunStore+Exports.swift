import Foundation
import MisalignIO

/// One table of the store, every column, for the flat exports: cells are `.null`, `.int`,
/// `.double` or `.string`, in `columns`' order.
public struct StoredTable: Sendable, Equatable {
    public var name: String
    public var columns: [String]
    public var rows: [[JSONValue]]
}

/// One dataset's across-seed lag summary of one judge (`lag_summary`).
public struct StoredLagSummary: Sendable, Equatable {
    public var dataset: String
    public var judge: String
    public var seeds: Int
    public var medianLag: Double?
    public var positive: Int
    public var negative: Int
    public var signTestP: Double?
}

/// Whole tables, for exports and `misalign inspect`.
extension RunStore {
    /// Every row of table `name` (one of `Exports.tables`), ordered by its primary key.
    public func table(_ name: String) throws(PipelineError) -> StoredTable {
        try checkTableName(name)
        let info = try db.query("PRAGMA table_info(\(name))")
        let cols = info.compactMap { $0[1].text }
        let keyCols = info.filter { ($0[5].int ?? 0) > 0 }.sorted { ($0[5].int ?? 0) < ($1[5].int ?? 0) }.compactMap { $0[1].text }
        let order = keyCols.isEmpty ? "" : " ORDER BY " + keyCols.joined(separator: ", ")
        let rows = try db.query("SELECT \(cols.joined(separator: ", ")) FROM \(name)\(order)")
        return StoredTable(name: name, columns: cols, rows: rows.map { $0.map(Self.json) })
    }

    /// A cell as JSON: non-finite numbers (which no CSV or JSON reader takes) become null.
    static func json(_ v: SQLValue) -> JSONValue {
        switch v {
        case .null: return .null
        case .int(let i): return .int(i)
        case .double(let d): return d.isFinite ? .double(d) : .null
        case .text(let t): return .string(t)
        }
    }

    /// Every dataset's lag summary, by dataset and judge.
    public func lagSummaries() throws(PipelineError) -> [StoredLagSummary] {
        try db.query("SELECT dataset, judge, seeds, median_lag, positive, negative, sign_test_p FROM lag_summary ORDER BY dataset, judge").map {
            StoredLagSummary(dataset: $0[0].text ?? "", judge: $0[1].text ?? "", seeds: $0[2].int ?? 0, medianLag: $0[3].double,
                             positive: $0[4].int ?? 0, negative: $0[5].int ?? 0, signTestP: $0[6].double)
        }
    }
}
