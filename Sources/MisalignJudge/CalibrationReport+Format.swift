import Foundation
import MisalignIO

extension CalibrationReport {
    /// One row per trait: items and scores per band, band means, AUC, unscored share, verdict;
    /// then each failing trait's reasons.
    public func formatted() -> String {
        func n(_ d: Double?, _ f: String) -> String { d.map { String(format: f, $0) } ?? "-" }
        var lines = [["judge", "trait", "low scored", "high scored", "mean low", "mean high", "AUC", "unscored", "verdict"]]
        for t in traits {
            lines.append([judge, t.trait, "\(t.lowScored)/\(t.lowItems)", "\(t.highScored)/\(t.highItems)", n(t.meanLow, "%.1f"),
                          n(t.meanHigh, "%.1f"), n(t.auc, "%.3f"), String(format: "%.0f%%", t.unscorableFraction * 100), t.passed ? "pass" : "FAIL"])
        }
        var out = JudgeReport.table(lines)
        for t in traits where !t.passed { out += "\n" + t.failures.map { "  \(judge) \(t.trait): \($0)" }.joined(separator: "\n") }
        return out + "\nset: \(set); \(cached) verdicts from the cache"
    }

    public func json() -> JSONValue {
        func n(_ d: Double?) -> JSONValue { d.map { .double($0) } ?? .null }
        return .object(JSONObject([
            ("judge", .string(judge)), ("set", .string(set)), ("passed", .bool(passed)), ("cached", .int(Int64(cached))),
            ("traits", .array(traits.map { t in
                .object(JSONObject([
                    ("trait", .string(t.trait)), ("passed", .bool(t.passed)), ("low_items", .int(Int64(t.lowItems))),
                    ("high_items", .int(Int64(t.highItems))), ("low_scored", .int(Int64(t.lowScored))), ("high_scored", .int(Int64(t.highScored))),
                    ("mean_low", n(t.meanLow)), ("mean_high", n(t.meanHigh)), ("auc", n(t.auc)),
                    ("unscorable_fraction", .double(t.unscorableFraction)), ("failures", .array(t.failures.map { .string($0) })),
                ]))
            })),
        ]))
    }
}
