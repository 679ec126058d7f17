import Foundation

/// Page's CUSUM (Page 1954) on standardised values `z = (x - mu0) / sd0`:
/// `S+ = max(0, S+ + z - k)`, `S- = max(0, S- - z - k)`, alarm when a sum exceeds `h`.
/// `k` (drift, in sd units) is half the shift one wants to detect fastest; `h` sets the false
/// alarm rate: k = 0.5, h = 5 gives an in-control average run length of about 930 checkpoints
/// one-sided (Montgomery, *Statistical Quality Control*, table 9.3, ~465 two-sided).
/// The change location is estimated, as usual for CUSUM, as the point right after the sum last
/// left zero before the alarm (the maximum-likelihood change point for a step shift).
///
/// Baseline mean and sd come from the first `baseline` values fed (the model before it has been
/// trained much), unless given; sd is floored at `minSD` (judge scores of a healthy model are
/// often exactly 0).
public struct Cusum: OnlineDetector, Sendable {
    public enum Sides: String, Sendable { case upper, lower, both }

    public var drift: Double
    public var threshold: Double
    public var sides: Sides
    public var baseline: Int
    public var minSD: Double
    /// Known in-control mean and sd; when nil they are estimated from the first `baseline` values.
    public var knownMeanSD: (mean: Double, sd: Double)?

    public private(set) var upper = 0.0
    public private(set) var lower = 0.0
    private var upperStart: Int?
    private var lowerStart: Int?
    private var warm: [Double] = []
    private var mu = 0.0, sd = 1.0
    private var ready = false

    public init(drift: Double = 0.5, threshold: Double = 5, sides: Sides = .upper, baseline: Int = 5,
                minSD: Double = 0, knownMeanSD: (mean: Double, sd: Double)? = nil) {
        precondition(drift >= 0 && threshold > 0 && baseline >= 2, "CUSUM needs drift >= 0, threshold > 0, baseline >= 2")
        self.drift = drift; self.threshold = threshold; self.sides = sides
        self.baseline = baseline; self.minSD = minSD; self.knownMeanSD = knownMeanSD
        reset()
    }

    public mutating func reset() {
        upper = 0; lower = 0; upperStart = nil; lowerStart = nil; warm = []
        if let k = knownMeanSD { mu = k.mean; sd = max(k.sd, minSD); ready = sd > 0 } else { ready = false }
    }

    /// Non-finite values are skipped (an online monitor must not die on one bad judge call);
    /// offline use goes through `CusumRule`, which rejects them.
    public mutating func update(_ value: Double, step: Int) -> Alarm? {
        guard value.isFinite else { return nil }
        if !ready {
            warm.append(value)
            if warm.count == baseline {
                let (m, s) = meanSD(warm[...])
                mu = m; sd = max(s, minSD)
                // A constant baseline with no floor: fall back to unit sd rather than divide by 0.
                if sd == 0 { sd = 1 }
                ready = true
            }
            return nil
        }
        let z = (value - mu) / sd
        if sides != .lower {
            let next = max(0, upper + z - drift)
            if upper == 0 && next > 0 { upperStart = step }
            upper = next
            if upper == 0 { upperStart = nil }
            if upper > threshold { return Alarm(step: step, changeStep: upperStart ?? step, statistic: upper) }
        }
        if sides != .upper {
            let next = max(0, lower - z - drift)
            if lower == 0 && next > 0 { lowerStart = step }
            lower = next
            if lower == 0 { lowerStart = nil }
            if lower > threshold { return Alarm(step: step, changeStep: lowerStart ?? step, statistic: -lower) }
        }
        return nil
    }
}

/// CUSUM as an onset rule: the estimated change index at the first alarm, one-sided in the
/// signal's direction. The in-control mean is the baseline mean; the sd is the largest of the
/// baseline sd, `minSD` and (with `robustSD`, offline only) the whole series' robust noise sd
/// (`Penalty.robustSigma`), because an sd underestimated from five points makes CUSUM alarm
/// on noise.
public struct CusumRule: OnsetRule {
    public var drift: Double
    public var threshold: Double
    public var baseline: Int
    public var minSD: Double
    public var robustSD: Bool
    public var name: String { "cusum" }
    public init(drift: Double = 0.5, threshold: Double = 5, baseline: Int = 5, minSD: Double = 0, robustSD: Bool = true) {
        self.drift = drift; self.threshold = threshold; self.baseline = baseline; self.minSD = minSD; self.robustSD = robustSD
    }

    public func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? {
        guard drift >= 0, threshold > 0, baseline >= 2 else {
            throw .invalidParameter(name: "cusum", value: "drift=\(drift) threshold=\(threshold) baseline=\(baseline)", reason: "needs drift >= 0, threshold > 0, baseline >= 2")
        }
        try SeriesCheck.finite(x, series: series)
        guard x.count > baseline else { throw .tooShort(series: series, count: x.count, needed: baseline + 1, method: name) }
        let o = direction.orient(x)
        let (mu, sd) = meanSD(o[0..<baseline])
        var s = max(sd, minSD, robustSD ? Penalty.robustSigma(x) : 0)
        if s == 0 { s = 1 }   // constant baseline and series noise, no floor: unit scale
        var c = Cusum(drift: drift, threshold: threshold, sides: .upper, baseline: baseline, minSD: minSD, knownMeanSD: (mu, s))
        for i in baseline..<o.count {
            if let a = c.update(o[i], step: i) { return a.changeStep }
        }
        return nil
    }
}
