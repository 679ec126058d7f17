import Foundation

/// One segment `start..<end` of a segmentation with its mean and cost.
public struct Segment: Equatable, Sendable {
    public var start: Int
    public var end: Int
    public var mean: Double
    public var cost: Double
}

/// A change point at `index` (the first index of the new segment; in ruptures' convention the
/// end of the segment before it), with the segments on either side.
public struct ChangePoint: Equatable, Sendable {
    public var index: Int
    public var before: Segment
    public var after: Segment
    /// `after.mean - before.mean`: the size and direction of the shift.
    public var meanShift: Double { after.mean - before.mean }
}

/// Why a segmentation has no change point, when that is a property of the data rather than
/// the search's verdict.
public enum NoChangeReason: String, Sendable {
    case constantSeries = "constant series"
}

/// The result of an offline search.
public struct Segmentation: Equatable, Sendable {
    /// ruptures' convention: the end of every segment, the last equal to the series length.
    public var breakpoints: [Int]
    public var segments: [Segment]
    /// Sum of segment costs (without penalty).
    public var totalCost: Double
    /// The penalty per change point when the search was penalised.
    public var penalty: Double?
    public var noChangeReason: NoChangeReason?

    public var changePoints: [ChangePoint] {
        guard segments.count > 1 else { return [] }
        return (1..<segments.count).map {
            ChangePoint(index: segments[$0].start, before: segments[$0 - 1], after: segments[$0])
        }
    }
    /// `totalCost + penalty * (number of change points)`, the PELT objective.
    public var penalisedCost: Double? {
        penalty.map { totalCost + $0 * Double(breakpoints.count - 1) }
    }

    init(breakpoints: [Int], series: [Double], cost: AnyCost, penalty: Double?, reason: NoChangeReason? = nil) {
        self.breakpoints = breakpoints
        var segs: [Segment] = []
        var s = 0, total = 0.0
        for e in breakpoints {
            let c = cost.cost(s, e)
            segs.append(Segment(start: s, end: e, mean: segmentMean(series, s, e), cost: c))
            total += c; s = e
        }
        segments = segs
        totalCost = total
        self.penalty = penalty
        noChangeReason = reason
    }
}

/// Stopping rule of a search: a penalty per change point, or a fixed number of them.
public enum StoppingRule: Equatable, Sendable {
    case penalty(Double)
    case count(Int)
}

/// Offline change-point detection over a whole series.
public protocol ChangePointDetector {
    /// Detects change points in `series`. `name` labels the series in errors.
    func detect(_ series: [Double], name: String) throws(ChangePointError) -> Segmentation
}

/// An alarm raised by an online detector.
public struct Alarm: Equatable, Sendable {
    /// The step at which the alarm was raised (after seeing this value).
    public var step: Int
    /// The detector's estimate of where the change began (a step at or before `step`).
    public var changeStep: Int
    /// Detector-specific strength (CUSUM statistic, posterior probability).
    public var statistic: Double
}

/// A detector fed one checkpoint at a time during training.
public protocol OnlineDetector {
    /// Feeds the value observed at `step`; returns an alarm the first time (and every time
    /// after, while the evidence persists) a change is detected.
    mutating func update(_ value: Double, step: Int) -> Alarm?
    /// Forgets everything seen, back to the configured prior/baseline.
    mutating func reset()
}

/// Shared validation of offline search parameters, following ruptures' `sanity_check`
/// (`utils.py`): `n_bkps <= n // jump` and `n_bkps * ceil(min_size/jump) * jump + min_size <= n`.
enum SearchSetup {
    static func admissible(n: Int, nBkps: Int, jump: Int, minSize: Int) -> Bool {
        if nBkps > n / jump { return false }
        let step = ((minSize + jump - 1) / jump) * jump
        return nBkps * step + minSize <= n
    }

    /// Checks the series and parameters; returns the effective `min_size`
    /// (`max(min_size, cost.min_size)`, as ruptures does).
    static func check(_ x: [Double], name: String, model: CostModel, minSize: Int, jump: Int,
                      nBkps: Int, method: String) throws(ChangePointError) -> Int {
        guard jump >= 1 else { throw .invalidParameter(name: "jump", value: "\(jump)", reason: "must be at least 1") }
        guard minSize >= 1 else { throw .invalidParameter(name: "min_size", value: "\(minSize)", reason: "must be at least 1") }
        guard nBkps >= 0 else { throw .invalidParameter(name: "n_bkps", value: "\(nBkps)", reason: "must be non-negative") }
        try SeriesCheck.finite(x, series: name)
        let m = max(minSize, model.minSize)
        if !admissible(n: x.count, nBkps: nBkps, jump: jump, minSize: m) {
            let step = ((m + jump - 1) / jump) * jump
            throw .tooShort(series: name, count: x.count, needed: max(nBkps * step + m, nBkps * jump), method: method)
        }
        return m
    }

    static func checkPenalty(_ pen: Double) throws(ChangePointError) {
        guard pen.isFinite, pen >= 0 else {
            throw .invalidParameter(name: "pen", value: "\(pen)", reason: "must be a finite non-negative number")
        }
    }

    /// The shared front end of every offline detector: validates, and answers constant
    /// series explicitly (no change point for a penalty or zero breakpoints; a typed error
    /// for a positive fixed count, which ruptures would answer with an arbitrary tie-break).
    static func constantAnswer(_ x: [Double], name: String, model: CostModel, rule: StoppingRule) throws(ChangePointError) -> Segmentation? {
        guard SeriesCheck.isConstant(x) else { return nil }
        if case .count(let k) = rule, k > 0 { throw .constantSeries(series: name, value: x[0]) }
        var pen: Double? = nil
        if case .penalty(let p) = rule { pen = p }
        return Segmentation(breakpoints: [x.count], series: x, cost: AnyCost(model, x), penalty: pen, reason: .constantSeries)
    }
}

/// A search that stops by a `StoppingRule` (binary segmentation, bottom-up), generic over the
/// cost so each cost model is dispatched once, outside the search's loops.
protocol RuleSearch {
    func search<C: SegmentCost>(_ c: C, rule: StoppingRule, minSize: Int, jump: Int) -> [Int]
}

extension SearchSetup {
    /// The checks, the constant-series answer and the cost dispatch shared by every
    /// `RuleSearch`; `method` names the search in errors.
    static func run<S: RuleSearch>(_ s: S, _ series: [Double], name: String, model: CostModel, rule: StoppingRule,
                                   minSize: Int, jump: Int, method: String) throws(ChangePointError) -> Segmentation {
        var nb = 0, pen: Double? = nil
        switch rule {
        case .count(let k): nb = k
        case .penalty(let p): try checkPenalty(p); pen = p
        }
        let m = try check(series, name: name, model: model, minSize: minSize, jump: jump, nBkps: nb, method: method)
        if let c = try constantAnswer(series, name: name, model: model, rule: rule) { return c }
        let bkps: [Int]
        switch model {
        case .l2: bkps = s.search(L2Cost(series), rule: rule, minSize: m, jump: jump)
        case .l1: bkps = s.search(L1Cost(series), rule: rule, minSize: m, jump: jump)
        case .normal: bkps = s.search(NormalCost(series), rule: rule, minSize: m, jump: jump)
        }
        return Segmentation(breakpoints: bkps, series: series, cost: AnyCost(model, series), penalty: pen)
    }
}

extension Segmentation {
    /// A segmentation from breakpoints found by any search, e.g. a custom
    /// `ChangePointDetector`: segment means and costs are computed with `model`'s cost.
    /// `breakpoints` follow ruptures' convention (strictly increasing segment ends, the last
    /// equal to `series.count`).
    public init(breakpoints: [Int], series: [Double], model: CostModel = .l2, penalty: Double? = nil) throws(ChangePointError) {
        try SeriesCheck.finite(series, series: "series")
        guard let last = breakpoints.last, last == series.count else {
            throw .invalidInput(field: "breakpoints", reason: "must end with the series length \(series.count), got \(breakpoints)")
        }
        for (i, b) in breakpoints.enumerated() where b <= (i == 0 ? 0 : breakpoints[i - 1]) {
            throw .invalidInput(field: "breakpoints", reason: "must be strictly increasing and positive, got \(breakpoints)")
        }
        self.init(breakpoints: breakpoints, series: series, cost: AnyCost(model, series), penalty: penalty)
    }
}
