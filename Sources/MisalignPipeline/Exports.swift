import Foundation
import MisalignIO

/// Flat files rebuilt from the store after each run that did work: one CSV and one JSON
/// Lines file per table, each written atomically, for `pandas.read_csv` / `read_json(lines=True)`.
public enum Exports {
    public static let folder = "exports"
    /// Tables exported, in the order a reader meets them.
    public static let tables = ["checkpoints", "metrics", "heldout_loss", "generations", "judgments", "aggregates", "misaligned", "onsets", "lags", "lag_summary", "probes", "alarms", "adapter_dynamics", "adapter_modules", "projections", "projection_aggregates", "calibrations"]

    public static func write(store: RunStore, to dir: URL) throws {
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw PipelineError.unwritable(path: dir.path, reason: (error as NSError).localizedDescription)
        }
        for t in tables {
            let table = try store.table(t)
            var csv = table.columns.joined(separator: ",") + "\n"
            var jsonl = ""
            for row in table.rows {
                csv += row.map { csvField($0) }.joined(separator: ",") + "\n"
                var o: [(String, JSONValue)] = []
                for (c, v) in zip(table.columns, row) { o.append((c, v)) }
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

    /// A cell of `RunStore.table` as a CSV field: null (and a non-finite number) empty, text
    /// quoted when it holds a comma, quote, line break or edge space.
    static func csvField(_ v: JSONValue) -> String {
        let s: String
        switch v {
        case .double(let d): return d.isFinite ? "\(d)" : ""
        case .int(let i): return String(i)
        case .string(let t): s = t
        default: return ""
        }
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) || s.hasPrefix(" ") || s.hasSuffix(" ") else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
