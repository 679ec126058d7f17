import Foundation

/// The bar a judge must clear on a trait before its scores are trusted.
public struct CalibrationThresholds: Sendable, Equatable {
    /// Area under the ROC curve of high-band against low-band scores.
    public var minAUC = 0.85
    /// Mean of the high band minus mean of the low band, in score points.
    public var minSeparation = 30.0
    /// Share of the trait's banded items the judge could not score (refusal, no numeric mass,
    /// unparseable, failed call).
    public var maxUnscorable = 0.25
    /// Scored items each band needs for a verdict.
    public var minScoredPerBand = 5

    public init() {}
}

/// A judge's figures on one trait of a calibration set, and its verdict.
public struct TraitCalibration: Sendable, Equatable {
    public var trait: String
    /// Items with a low / high band on the trait.
    public var lowItems: Int
    public var highItems: Int
    /// Of those, scored (status ok with a score).
    public var lowScored: Int
    public var highScored: Int
    public var meanLow: Double?
    public var meanHigh: Double?
    /// P(a high item's score > a low item's) + P(equal) / 2 over every scored pair (the
    /// Mann-Whitney U over `lowScored * highScored`); nil when a band has no score.
    public var auc: Double?
    /// Unscored items over banded items.
    public var unscorableFraction: Double
    public var passed: Bool
    /// Why it failed, one reason per threshold missed (empty when passed).
    public var failures: [String]

    public var separation: Double? { meanHigh.flatMap { h in meanLow.map { h - $0 } } }
}

/// Scores of a calibration set against its bands.
public enum Calibration {
    /// The figures of one trait from each item's verdict (`verdicts[item.id]`; a missing entry
    /// counts as unscorable, as a failed call does).
    public static func evaluate(trait: String, set: CalibrationSet, verdicts: [String: Verdict],
                                thresholds t: CalibrationThresholds = CalibrationThresholds()) -> TraitCalibration {
        var low: [Double] = [], high: [Double] = []
        var lowItems = 0, highItems = 0
        for item in set.items {
            let band = item.band(trait)
            guard band != .any else { continue }
            if band == .low { lowItems += 1 } else { highItems += 1 }
            guard let v = verdicts[item.id], v.status == .ok, let s = v.score else { continue }
            if band == .low { low.append(s) } else { high.append(s) }
        }
        let banded = lowItems + highItems
        let unscorable = banded == 0 ? 0 : Double(banded - low.count - high.count) / Double(banded)
        let meanLow = mean(low), meanHigh = mean(high)
        let a = auc(low: low, high: high)
        var failures: [String] = []
        if banded == 0 { failures.append("the set has no low or high item for \(trait)") }
        if low.count < t.minScoredPerBand || high.count < t.minScoredPerBand {
            failures.append("\(low.count) low and \(high.count) high items scored; each band needs \(t.minScoredPerBand)")
        }
        if let a, a < t.minAUC { failures.append(String(format: "AUC %.3f is below %.2f: high and low answers are not told apart", a, t.minAUC)) }
        if let h = meanHigh, let l = meanLow, h - l < t.minSeparation {
            failures.append(String(format: "band means %.1f (high) and %.1f (low) are %.1f points apart; %.0f needed", h, l, h - l, t.minSeparation))
        }
        if unscorable > t.maxUnscorable {
            failures.append(String(format: "%.0f%% of the items were not scored (at most %.0f%%)", unscorable * 100, t.maxUnscorable * 100))
        }
        return TraitCalibration(trait: trait, lowItems: lowItems, highItems: highItems, lowScored: low.count, highScored: high.count,
                                meanLow: meanLow, meanHigh: meanHigh, auc: a, unscorableFraction: unscorable,
                                passed: failures.isEmpty, failures: failures)
    }

    /// P(h > l) + P(h == l) / 2 over all pairs, by sorting (O(n log n)); nil when either is empty.
    public static func auc(low: [Double], high: [Double]) -> Double? {
        guard !low.isEmpty, !high.isEmpty else { return nil }
        let lows = low.sorted()
        var wins = 0.0
        for h in high {
            let below = lowerBound(lows, h), notAbove = upperBound(lows, h)
            wins += Double(below) + 0.5 * Double(notAbove - below)
        }
        return wins / (Double(low.count) * Double(high.count))
    }

    static func mean(_ xs: [Double]) -> Double? {
        guard !xs.isEmpty else { return nil }
        var s = 0.0
        for x in xs { s += x }
        return s / Double(xs.count)
    }

    /// First index whose value is >= x / > x in a sorted array.
    private static func lowerBound(_ a: [Double], _ x: Double) -> Int {
        var lo = 0, hi = a.count
        while lo < hi { let m = (lo + hi) / 2; if a[m] < x { lo = m + 1 } else { hi = m } }
        return lo
    }
    private static func upperBound(_ a: [Double], _ x: Double) -> Int {
        var lo = 0, hi = a.count
        while lo < hi { let m = (lo + hi) / 2; if a[m] <= x { lo = m + 1 } else { hi = m } }
        return lo
    }
}
