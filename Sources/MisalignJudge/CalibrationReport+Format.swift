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
        .object(JSONObject([
            ("judge", .string(judge)), ("set", .string(set)), ("passed", .bool(passed)), ("cached", .int(Int64(cached))),
            ("traits", .array(traits.map { $0.json() })),
        ]))
    }
}

extension TraitCalibration {
    /// JSON of the figures and verdict (`misalign judge calibrate --json`, the run store).
    public func json() -> JSONValue {
        func n(_ d: Double?) -> JSONValue { d.map { .double($0) } ?? .null }
        return .object(JSONObject([
            ("trait", .string(trait)), ("passed", .bool(passed)), ("low_items", .int(Int64(lowItems))),
            ("high_items", .int(Int64(highItems))), ("low_scored", .int(Int64(lowScored))), ("high_scored", .int(Int64(highScored))),
            ("mean_low", n(meanLow)), ("mean_high", n(meanHigh)), ("auc", n(auc)),
            ("unscorable_fraction", .double(unscorableFraction)), ("failures", .array(failures.map { .string($0) })),
        ]))
    }

    /// Inverse of `json()`.
    public init(json v: JSONValue) throws(JudgeError) {
        guard let trait = v["trait"]?.stringValue, let passed = v["passed"]?.boolValue, let lowItems = v["low_items"]?.intValue,
              let highItems = v["high_items"]?.intValue, let lowScored = v["low_scored"]?.intValue,
              let highScored = v["high_scored"]?.intValue, let unscorable = v["unscorable_fraction"]?.doubleValue else {
            throw .invalidInput("calibration JSON lacks trait, passed, item counts or unscorable_fraction")
        }
        self.init(trait: trait, lowItems: lowItems, highItems: highItems, lowScored: lowScored, highScored: highScored,
                  meanLow: v["mean_low"]?.doubleValue, meanHigh: v["mean_high"]?.doubleValue, auc: v["auc"]?.doubleValue,
                  unscorableFraction: unscorable, passed: passed, failures: (v["failures"]?.arrayValue ?? []).compactMap(\.stringValue))
    }
}
