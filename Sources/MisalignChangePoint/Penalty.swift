import Foundation

/// Penalty helpers for the penalised searches (PELT, penalised Binseg/BottomUp).
public enum Penalty {
    /// A noise scale that ignores the mean shifts themselves: the median absolute deviation of
    /// first differences, scaled by 1.4826 (MAD -> sd for Gaussian noise) and divided by
    /// sqrt(2) (a difference of two independent points has twice the variance). A step changes
    /// one difference, so the median is barely moved (Fryzlewicz 2014, Killick et al. 2012).
    public static func robustSigma(_ x: [Double]) -> Double {
        guard x.count >= 3 else { return 0 }
        let d = zip(x.dropFirst(), x).map { $0 - $1 }
        let med = median(d)
        let mad = median(d.map { abs($0 - med) })
        return 1.4826 * mad / 2.0.squareRoot()
    }

    /// A BIC-style penalty in the units of each cost: BIC adds `d log n` per segment to
    /// `-2 log L`, and each cost is `-2 log L` up to a scale:
    /// - `l2` (Gaussian, known sigma): SSE = sigma^2 (-2 log L) -> `sigma^2 * d * log n`;
    /// - `normal`: the cost already is `-2 log L` -> `d * log n` with d = 2 (mean, variance);
    /// - `l1` (Laplace, scale b = sigma / sqrt 2): SAD = (b/2)(-2 log L) -> `(b/2) d log n`.
    /// Sigma is `robustSigma` unless given. A constant series gives 0 for l2/l1.
    public static func bic(_ x: [Double], model: CostModel, sigma: Double? = nil) -> Double {
        let n = Double(max(x.count, 2))
        let s = sigma ?? robustSigma(x)
        let d = Double(model.parametersPerSegment)
        switch model {
        case .l2: return s * s * d * log(n)
        case .normal: return d * log(n)
        case .l1: return (s / 2.0.squareRoot()) / 2 * d * log(n)
        }
    }

    /// `count` penalties spaced evenly in log scale from `low` to `high`.
    public static func logGrid(from low: Double, to high: Double, count: Int) -> [Double] {
        precondition(low > 0 && high >= low && count >= 1, "logGrid needs 0 < low <= high and count >= 1")
        if count == 1 { return [low] }
        let a = log(low), b = log(high)
        return (0..<count).map { exp(a + (b - a) * Double($0) / Double(count - 1)) }
    }

    /// One row of a penalty sweep.
    public struct SweepRow: Equatable, Sendable {
        public var penalty: Double
        public var breakpoints: [Int]
        public var totalCost: Double
        public var changePoints: Int { breakpoints.count - 1 }
    }

    /// PELT at each penalty, so a user can see how stable the segmentation is: a change point
    /// that survives a tenfold range of penalties is real, one that flickers is noise.
    /// Rows keep the order of `penalties`.
    public static func sweep(_ x: [Double], name: String = "series", model: CostModel = .l2,
                             penalties: [Double], minSize: Int = 2, jump: Int = 1) throws(ChangePointError) -> [SweepRow] {
        var rows: [SweepRow] = []
        for p in penalties {
            let s = try Pelt(model: model, penalty: p, minSize: minSize, jump: jump).detect(x, name: name)
            rows.append(SweepRow(penalty: p, breakpoints: s.breakpoints, totalCost: s.totalCost))
        }
        return rows
    }
}

/// Median of a non-empty array (average of the two middle values for an even count).
func median(_ v: [Double]) -> Double {
    precondition(!v.isEmpty, "median of an empty array")
    let s = v.sorted()
    let m = s.count / 2
    return s.count % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

/// Linear-interpolation percentile (numpy's default), q in [0, 100].
func percentile(_ sorted: [Double], _ q: Double) -> Double {
    precondition(!sorted.isEmpty, "percentile of an empty array")
    let pos = q / 100 * Double(sorted.count - 1)
    let lo = Int(pos.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
    let f = pos - Double(lo)
    return sorted[lo] + (sorted[hi] - sorted[lo]) * f
}
