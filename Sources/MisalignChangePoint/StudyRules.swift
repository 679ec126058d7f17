import Foundation

// The reference study's three onset rules, exactly as its analysis code defines them
// (Docs/ChangePoint.md, "The study's rules"). They are looser than the default rules and
// report earlier: the threshold needs one point, the moving average pads its edges with
// zeros, and the mean shift always finds a split once the curve has 4 points. Arithmetic
// follows numpy's order (sequential window sums, pairwise means), so exact ties break as
// the study's code breaks them.

/// The study's threshold: the first checkpoint whose mean is at or above `value` (at or below
/// it for a `down` signal), with `consecutive` points in a row (the study: 1). A curve shorter
/// than `consecutive` has no onset (the study's code never refuses a curve).
public struct StudyThresholdRule: OnsetRule {
    public var value: Double
    public var consecutive: Int
    public var name: String { "threshold" }
    public init(value: Double = 50, consecutive: Int = 1) { self.value = value; self.consecutive = consecutive }

    public func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? {
        guard consecutive >= 1 else { throw .invalidParameter(name: "consecutive", value: "\(consecutive)", reason: "must be at least 1") }
        guard value.isFinite else { throw .invalidParameter(name: "threshold value", value: "\(value)", reason: "must be finite") }
        try SeriesCheck.finite(x, series: series)
        guard x.count >= consecutive else { return nil }
        return firstRun(x.count, length: consecutive) { direction == .up ? x[$0] >= value : x[$0] <= value }
    }
}

/// The study's moving-average rise: smooth with a `window`-point moving average whose edges are
/// zero-padded (numpy `convolve(x, ones(w)/w, 'same')`; the curve is left unsmoothed when it
/// has fewer than `window` points or `window` is 1), then the onset is the first index `i` in
/// `window / 2 ... n - patience - 1` from which the smoothed values at `i ... i + patience`
/// never decrease (equal neighbours count as not decreasing). A `down` signal is reflected as
/// `scale - x` first, so the zero padding still pulls the ends toward the healthy side (a
/// plain negation would make the padded last points look like a rise).
public struct StudyMovingAverageRule: OnsetRule {
    public var window: Int
    public var patience: Int
    /// Top of the score scale, used to reflect a `down` signal.
    public var scale: Double
    public var name: String { "ma-rise" }
    public init(window: Int = 3, patience: Int = 2, scale: Double = 100) {
        self.window = window; self.patience = patience; self.scale = scale
    }

    public func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? {
        guard window >= 1, patience >= 1 else {
            throw .invalidParameter(name: "window/patience", value: "\(window)/\(patience)", reason: "both must be at least 1")
        }
        guard scale.isFinite else { throw .invalidParameter(name: "scale", value: "\(scale)", reason: "must be finite") }
        try SeriesCheck.finite(x, series: series)
        let o = direction == .up ? x : x.map { scale - $0 }
        let s = Self.smooth(o, window: window)
        var i = window / 2
        while i < s.count - patience {
            var ok = true
            for k in 1...patience where !(s[i + k] >= s[i + k - 1]) { ok = false; break }
            if ok { return i }
            i += 1
        }
        return nil
    }

    /// numpy's `convolve(x, ones(w)/w, 'same')`: output i sums `x[m] * (1/w)` for m from
    /// `i + (w-1)/2 - (w-1)` to `i + (w-1)/2` within the curve, in increasing m, from 0.
    /// Unsmoothed when `w <= 1` or the curve is shorter than `w`.
    public static func smooth(_ x: [Double], window w: Int) -> [Double] {
        let n = x.count
        if w <= 1 || n < w { return x }
        let k = 1.0 / Double(w)
        let off = (w - 1) / 2
        var out = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let lo = max(0, i + off - (w - 1)), hi = min(n - 1, i + off)
            var s = 0.0
            for m in lo...hi { s += x[m] * k }
            out[i] = s
        }
        return out
    }
}

/// The study's mean shift (its "ruptures" method, written by hand): the split `k` in
/// `minSegment ... n - minSegment` maximising `|mean(x[k...]) - mean(x[..<k])|`, the first
/// maximum winning; the onset is `k - 1`, the checkpoint before the split. No onset when the
/// curve has fewer than `2 * minSegment` points. The shift is unsigned, as in the study, so
/// the signal's direction does not matter, and a flat curve gives `minSegment - 1`.
public struct StudyMeanShiftRule: OnsetRule {
    public var minSegment: Int
    public var name: String { "meanshift" }
    public init(minSegment: Int = 2) { self.minSegment = minSegment }

    public func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? {
        guard minSegment >= 1 else { throw .invalidParameter(name: "min_segment", value: "\(minSegment)", reason: "must be at least 1") }
        try SeriesCheck.finite(x, series: series)
        let n = x.count
        guard n >= 2 * minSegment else { return nil }
        var best: Int?, bestScore = -Double.infinity
        for k in minSegment...(n - minSegment) {
            let left = NumpySum.pairwise(x[0..<k]) / Double(k)
            let right = NumpySum.pairwise(x[k..<n]) / Double(n - k)
            let score = abs(right - left)
            if best == nil || score > bestScore { best = k; bestScore = score }
        }
        return best.map { max(0, $0 - 1) }
    }
}

/// numpy's float64 sum (`np.add.reduce`): pairwise summation with 8 accumulators in blocks of
/// at most 128, sequential below 8 values, so means match numpy's to the last bit.
public enum NumpySum {
    public static func pairwise(_ a: ArraySlice<Double>) -> Double {
        let n = a.count, b = a.startIndex
        if n < 8 {
            var r = 0.0
            for v in a { r += v }
            return r
        }
        if n <= 128 {
            var r = (0..<8).map { a[b + $0] }
            var i = 8
            while i < n - n % 8 {
                for j in 0..<8 { r[j] += a[b + i + j] }
                i += 8
            }
            var res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n { res += a[b + i]; i += 1 }
            return res
        }
        var n2 = n / 2
        n2 -= n2 % 8
        return pairwise(a[b..<(b + n2)]) + pairwise(a[(b + n2)...])
    }
}
