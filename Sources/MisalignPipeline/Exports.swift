import Foundation
import MisalignIO

/// Flat files rebuilt from the store after each run that did work: one CSV and one JSON
/// Lines file per table, each written atomically, for `pandas.read_csv` / `read_json(lines=True)`.
public enum Exports {
    public static let folder = "exports"
    /// Tables exported, in the order a reader meets them.
    public static let tables = ["checkpoints", "metrics", "heldout_loss", "generations", "judgments", "aggregates", "misaligned", "onsets", "lags", "lag_summary", "probes", "alarms"]

    public static func write(store: RunStore, to dir: URL) throws {
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw PipelineError.unwritable(path: dir.path, reason: (error as NSError).localizedDescription)
        }
        for t in tables {
            let cols = try store.rows("PRAGMA table_info(\(t))").compactMap { $0[1].text }
            let keyCols = try store.rows("PRAGMA table_info(\(t))").filter { ($0[5].int ?? 0) > 0 }
                .sorted { $0.int5 < $1.int5 }.compactMap { $0[1].text }
            let order = keyCols.isEmpty ? "" : " ORDER BY " + keyCols.joined(separator: ", ")
            let rows = try store.rows("SELECT \(cols.joined(separator: ", ")) FROM \(t)\(order)")
            var csv = cols.joined(separator: ",") + "\n"
            var jsonl = ""
            for row in rows {
                csv += row.map { csvField($0) }.joined(separator: ",") + "\n"
                var o: [(String, JSONValue)] = []
                for (c, v) in zip(cols, row) { o.append((c, json(v))) }
                jsonl += JSONValue.object(JSONObject(o)).serialized() + "\n"
            }
            do {
                try AtomicFile.write(Data(csv.utf8), to: dir.appendingPathComponent("\(t).csv"))
                try AtomicFile.write(Data(jsonl.utf8), to: dir.appendingPathComponent("\(t).jsonl"))
            } catch let e as FileError {
                throw PipelineError.unwritable(path: dir.path, reason: e.description)
            }
        }
    }

    static func csvField(_ v: SQLValue) -> String {
        let s: String
        switch v {
        case .null: return ""
        case .double(let d): return d.isFinite ? "\(d)" : ""
        case .int(let i): return String(i)
        case .text(let t): s = t
        }
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) || s.hasPrefix(" ") || s.hasSuffix(" ") else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    static func json(_ v: SQLValue) -> JSONValue {
        switch v {
        case .null: return .null
        case .int(let i): return .int(i)
        case .double(let d): return d.isFinite ? .double(d) : .null
        case .text(let t): return .string(t)
        }
    }
}

private extension Array where Element == SQLValue {
    var int5: Int { self[5].int ?? 0 }
}
