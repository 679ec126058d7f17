import Foundation

/// How well two judges agree over the same answers.
public struct AgreementStats: Sendable, Equatable {
    /// Answers both judges scored.
    public var n: Int
    public var pearson: Double?
    public var spearman: Double?
    public var meanAbsoluteDifference: Double?
    /// Share of jointly scored answers whose scores differ by 20 points or more.
    public var shareDifferingBy20: Double?
    /// Krippendorff's alpha with the interval metric, over every answer with two scores.
    public var krippendorffAlpha: Double?
    /// Cohen's kappa after thresholding both scores at 50 (>= 50 counts as positive).
    public var cohenKappa: Double?
}

/// Agreement statistics. Missing scores (nil: refusals, no numeric mass, errors) are skipped
/// pairwise. A statistic that is undefined for the data (a constant column, fewer than two
/// answers) is nil rather than NaN.
public enum Agreement {
    /// Compares two judges' scores for the same answers, index by index.
    public static func compare(_ a: [Double?], _ b: [Double?], threshold: Double = 50) -> AgreementStats {
        precondition(a.count == b.count, "score lists must be aligned")
        var x: [Double] = [], y: [Double] = []
        for (p, q) in zip(a, b) { if let p, let q { x.append(p); y.append(q) } }
        let diffs = zip(x, y).map { abs($0 - $1) }
        return AgreementStats(
            n: x.count,
            pearson: pearson(x, y),
            spearman: spearman(x, y),
            meanAbsoluteDifference: x.isEmpty ? nil : diffs.reduce(0, +) / Double(x.count),
            shareDifferingBy20: x.isEmpty ? nil : Double(diffs.filter { $0 >= 20 }.count) / Double(x.count),
            krippendorffAlpha: krippendorffAlphaInterval([a, b]),
            cohenKappa: cohenKappa(x, y, threshold: threshold))
    }

    public static func pearson(_ x: [Double], _ y: [Double]) -> Double? {
        let n = Double(x.count)
        guard x.count >= 2 else { return nil }
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) { sxy += (a - mx) * (b - my); sxx += (a - mx) * (a - mx); syy += (b - my) * (b - my) }
        guard sxx > 0, syy > 0 else { return nil }
        return sxy / (sxx * syy).squareRoot()
    }

    /// Pearson correlation of the ranks, ties sharing their average rank.
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double? {
        pearson(ranks(x), ranks(y))
    }

    static func ranks(_ v: [Double]) -> [Double] {
        let order = v.indices.sorted { v[$0] < v[$1] }
        var r = [Double](repeating: 0, count: v.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
            let avg = Double(i + j) / 2 + 1
            for k in i...j { r[order[k]] = avg }
            i = j + 1
        }
        return r
    }

    /// Krippendorff's alpha, interval metric. `ratings[rater][unit]`, nil where missing.
    /// Only units with at least two values are pairable. Alpha = 1 - D_o / D_e with the
    /// observed disagreement D_o from within-unit pairs (each unit weighted 1/(m_u - 1)) and
    /// the expected disagreement D_e from all pairs of pairable values.
    public static func krippendorffAlphaInterval(_ ratings: [[Double?]]) -> Double? {
        guard let units = ratings.first?.count else { return nil }
        var pooled: [Double] = []
        var observed = 0.0
        for u in 0..<units {
            let values = ratings.compactMap { $0[u] }
            guard values.count >= 2 else { continue }
            pooled += values
            var s = 0.0
            for i in values.indices { for j in values.indices where i != j { s += (values[i] - values[j]) * (values[i] - values[j]) } }
            observed += s / Double(values.count - 1)
        }
        let n = Double(pooled.count)
        guard n >= 2 else { return nil }
        let sum = pooled.reduce(0, +), sumSq = pooled.reduce(0) { $0 + $1 * $1 }
        let expectedPairs = 2 * n * sumSq - 2 * sum * sum // sum over ordered pairs i != j of (x_i - x_j)^2
        guard expectedPairs > 0 else { return nil }
        let dO = observed / n
        let dE = expectedPairs / (n * (n - 1))
        return 1 - dO / dE
    }

    /// Cohen's kappa for the binary labels `score >= threshold`.
    public static func cohenKappa(_ x: [Double], _ y: [Double], threshold: Double = 50) -> Double? {
        guard !x.isEmpty else { return nil }
        let n = Double(x.count)
        let a = x.map { $0 >= threshold }, b = y.map { $0 >= threshold }
        let po = Double(zip(a, b).filter { $0 == $1 }.count) / n
        let pa = Double(a.filter { $0 }.count) / n, pb = Double(b.filter { $0 }.count) / n
        let pe = pa * pb + (1 - pa) * (1 - pb)
        guard pe < 1 else { return nil }
        return (po - pe) / (1 - pe)
    }
}
