import Foundation

/// Which way a signal goes wrong: evil and hallucination scores go up, coherence goes down.
/// Rules work on the series oriented so that "wrong" is up (a `down` series is negated, and so
/// are its thresholds).
public enum Direction: String, Sendable, CaseIterable {
    case up, down
    @inline(__always) func orient(_ v: Double) -> Double { self == .up ? v : -v }
    func orient(_ x: [Double]) -> [Double] { self == .up ? x : x.map { -$0 } }
}

/// A rule that returns the checkpoint index at which a signal starts going wrong, or nil when
/// it never does. Implementations validate input and throw `ChangePointError`.
public protocol OnsetRule: Sendable {
    /// Short name used in tables and on the command line.
    var name: String { get }
    func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int?
}

/// First index `i` with `x[i...i+m-1]` all at or above `threshold` (at or below for `down`):
/// the reference study's "crosses 50" rule, with `consecutive` guarding against one noisy point.
public struct ThresholdRule: OnsetRule {
    public var threshold: Double
    public var consecutive: Int
    public var name: String { "threshold" }
    public init(threshold: Double = 50, consecutive: Int = 2) {
        self.threshold = threshold; self.consecutive = consecutive
    }

    public func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? {
        guard consecutive >= 1 else { throw .invalidParameter(name: "consecutive", value: "\(consecutive)", reason: "must be at least 1") }
        guard threshold.isFinite else { throw .invalidParameter(name: "threshold", value: "\(threshold)", reason: "must be finite") }
        try SeriesCheck.finite(x, series: series)
        guard x.count >= consecutive else { throw .tooShort(series: series, count: x.count, needed: consecutive, method: name) }
        let t = direction.orient(threshold)
        return firstRun(x.count, length: consecutive) { direction.orient(x[$0]) >= t }
    }
}

/// First index (after the baseline) of `consecutive` points above `mean + z * sd` of the first
/// `baseline` checkpoints. The sd is floored at `minSD` (judge scores of a healthy model are
/// often exactly 0, and a zero sd would make any positive score an onset) and, with
/// `robustSD`, at the whole series' robust noise sd (`Penalty.robustSigma`): five baseline
/// points give a very noisy sd, and an underestimate turns noise into onsets.
public struct BaselineZRule: OnsetRule {
    public var baseline: Int
    public var z: Double
    public var consecutive: Int
    public var minSD: Double
    public var robustSD: Bool
    public var name: String { "zscore" }
    public init(baseline: Int = 5, z: Double = 3, consecutive: Int = 2, minSD: Double = 0, robustSD: Bool = true) {
        self.baseline = baseline; self.z = z; self.consecutive = consecutive; self.minSD = minSD; self.robustSD = robustSD
    }

    public func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? {
        guard baseline >= 2 else { throw .invalidParameter(name: "baseline", value: "\(baseline)", reason: "needs at least 2 checkpoints for an sd") }
        guard consecutive >= 1 else { throw .invalidParameter(name: "consecutive", value: "\(consecutive)", reason: "must be at least 1") }
        guard minSD >= 0, z.isFinite else { throw .invalidParameter(name: "min_sd/z", value: "\(minSD)/\(z)", reason: "min_sd >= 0 and finite z") }
        try SeriesCheck.finite(x, series: series)
        guard x.count >= baseline + consecutive else {
            throw .tooShort(series: series, count: x.count, needed: baseline + consecutive, method: name)
        }
        let o = direction.orient(x)
        let (mu, sd) = meanSD(o[0..<baseline])
        let s = max(sd, minSD, robustSD ? Penalty.robustSigma(x) : 0)
        if s == 0 { throw .constantSeries(series: series + " (baseline)", value: x[0]) }
        let limit = mu + z * s
        guard let r = firstRun(x.count - baseline, length: consecutive, { o[baseline + $0] > limit }) else { return nil }
        return baseline + r
    }
}

/// Smoothed monotonic rise: a moving average of width `width` over complete windows only (no
/// zero padding, which would fake a rise at the start and a fall at the end), placed at each
/// window's centre; the onset is the first centre from which the average rises `patience` times
/// in a row by a total of more than `minRise`.
public struct MovingAverageRiseRule: OnsetRule {
    public var width: Int
    public var patience: Int
    public var minRise: Double
    public var name: String { "ma-rise" }
    public init(width: Int = 3, patience: Int = 2, minRise: Double = 0) {
        self.width = width; self.patience = patience; self.minRise = minRise
    }

    public func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? {
        guard width >= 1, patience >= 1 else {
            throw .invalidParameter(name: "width/patience", value: "\(width)/\(patience)", reason: "both must be at least 1")
        }
        try SeriesCheck.finite(x, series: series)
        let needed = width + patience
        guard x.count >= needed else { throw .tooShort(series: series, count: x.count, needed: needed, method: name) }
        let ma = movingAverage(direction.orient(x), width: width)
        // ma[j] covers x[j..<j+width]; its centre is j + (width - 1) / 2.
        let centre = (width - 1) / 2
        var j = 0
        while j + patience < ma.count {
            var ok = true
            for k in 1...patience where !(ma[j + k] > ma[j + k - 1]) { ok = false; break }
            if ok && ma[j + patience] - ma[j] > minRise { return j + 1 + centre }
            j += 1
        }
        return nil
    }
}

/// The first mean shift in the signal's direction found by PELT (l2 by default) with a
/// BIC-style penalty (`Penalty.bic`) unless one is given: the study's "mean-shift search",
/// but allowing several changes so a slow rise is not forced into a single step.
public struct MeanShiftRule: OnsetRule {
    public var model: CostModel
    public var penalty: Double?
    public var minSize: Int
    /// A shift must exceed this (in series units) to count as an onset.
    public var minShift: Double
    public var name: String { "meanshift" }
    public init(model: CostModel = .l2, penalty: Double? = nil, minSize: Int = 2, minShift: Double = 0) {
        self.model = model; self.penalty = penalty; self.minSize = minSize; self.minShift = minShift
    }

    public func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? {
        let o = direction.orient(x)
        if SeriesCheck.isConstant(o) { try SeriesCheck.finite(x, series: series); return nil }
        let pen = penalty ?? Penalty.bic(o, model: model)
        let seg = try Pelt(model: model, penalty: pen, minSize: minSize, jump: 1).detect(o, name: series)
        return seg.changePoints.first { $0.meanShift > minShift }?.index
    }
}

// MARK: - helpers

/// First `i` in `0..<n-length+1` with `pred` true on `i..<i+length`.
func firstRun(_ n: Int, length: Int, _ pred: (Int) -> Bool) -> Int? {
    var run = 0
    for i in 0..<n {
        if pred(i) { run += 1; if run == length { return i - length + 1 } } else { run = 0 }
    }
    return nil
}

/// Mean and sample sd (ddof 1).
func meanSD(_ x: ArraySlice<Double>) -> (Double, Double) {
    let n = Double(x.count)
    let mu = x.reduce(0, +) / n
    let ss = x.reduce(0) { $0 + ($1 - mu) * ($1 - mu) }
    return (mu, x.count > 1 ? (ss / (n - 1)).squareRoot() : 0)
}

/// Moving average over complete windows only: `count - width + 1` values.
public func movingAverage(_ x: [Double], width: Int) -> [Double] {
    precondition(width >= 1 && width <= x.count, "movingAverage needs 1 <= width <= count")
    var out = [Double](repeating: 0, count: x.count - width + 1)
    var s = x[0..<width].reduce(0, +)
    out[0] = s / Double(width)
    if out.count > 1 {
        for j in 1..<out.count {
            s += x[j + width - 1] - x[j - 1]
            out[j] = s / Double(width)
        }
    }
    return out
}
