import Foundation

/// The segment cost models of ruptures 1.1.10 (`ruptures/costs`), with the same values so
/// breakpoints agree:
/// - `l2`: sum of squared deviations from the segment mean (`var * n`), a mean shift.
/// - `l1`: sum of absolute deviations from the segment median, a robust mean shift.
/// - `normal`: `n * log(var + 1e-6)`, a change in mean and/or variance; ruptures >= 1.1.5 adds
///   the `1e-6` to the variance so truly constant segments do not give `log 0` (PR #198).
public enum CostModel: String, CaseIterable, Sendable {
    case l2, l1, normal

    /// The smallest segment the cost is defined on (ruptures' `cost.min_size`).
    public var minSize: Int {
        switch self {
        case .l2: return 1
        case .l1, .normal: return 2
        }
    }

    /// Free parameters per segment, the `d` of a BIC-style penalty.
    public var parametersPerSegment: Int { self == .normal ? 2 : 1 }
}

/// A segment cost `c(start, end)` over the half-open range `start..<end` of a fixed series.
/// Search functions are generic over it so the hot loops specialise.
public protocol SegmentCost {
    var count: Int { get }
    func cost(_ start: Int, _ end: Int) -> Double
}

/// Prefix sums of the *centred* series: centring first keeps `S2 - S1^2/m` from cancelling
/// catastrophically on scores far from zero (0-100 judge scores, long series).
struct PrefixSums {
    let s1: [Double]
    let s2: [Double]
    let offset: Double

    init(_ x: [Double]) {
        let n = x.count
        let mean = n == 0 ? 0 : x.reduce(0, +) / Double(n)
        var a = [Double](repeating: 0, count: n + 1)
        var b = [Double](repeating: 0, count: n + 1)
        x.withUnsafeBufferPointer { xp in
            var c1 = 0.0, c2 = 0.0
            for i in 0..<n {
                let v = xp[i] - mean
                c1 += v; c2 += v * v
                a[i + 1] = c1; b[i + 1] = c2
            }
        }
        s1 = a; s2 = b; offset = mean
    }

    /// Sum of squared deviations from the segment mean, clamped at 0 against rounding.
    @inline(__always) func sse(_ s: Int, _ e: Int) -> Double {
        let m = Double(e - s)
        let t1 = s1[e] - s1[s]
        return Swift.max(0, (s2[e] - s2[s]) - t1 * t1 / m)
    }

    @inline(__always) func mean(_ s: Int, _ e: Int) -> Double {
        (s1[e] - s1[s]) / Double(e - s) + offset
    }
}

/// ruptures `CostL2`: O(1) per segment from prefix sums.
public struct L2Cost: SegmentCost {
    let p: PrefixSums
    public let count: Int
    public init(_ x: [Double]) { p = PrefixSums(x); count = x.count }
    @inline(__always) public func cost(_ s: Int, _ e: Int) -> Double { p.sse(s, e) }
}

/// ruptures `CostNormal` (1-D, `add_small_diag=True`): `m * log(var + 1e-6)` with the
/// population variance (numpy's `var`, ddof 0).
public struct NormalCost: SegmentCost {
    let p: PrefixSums
    public let count: Int
    public static let smallDiagonal = 1e-6
    public init(_ x: [Double]) { p = PrefixSums(x); count = x.count }
    @inline(__always) public func cost(_ s: Int, _ e: Int) -> Double {
        let m = Double(e - s)
        return m * log(p.sse(s, e) / m + NormalCost.smallDiagonal)
    }
}

/// ruptures `CostL1`: sum of |x - median| over the segment, answered in O(log n) by a
/// persistent segment tree over value ranks (one version per prefix). The k smallest values
/// of `x[s..<e]` and their sum come from the difference of versions `e` and `s`, so
/// `sum|x - med| = (sum_high - med * n_high) + (med * n_low - sum_low)` needs no sort per query.
/// Any median between the two middle values gives the same sum, so numpy's averaging
/// convention does not matter.
public struct L1Cost: SegmentCost {
    public let count: Int
    // Node arrays of the persistent tree; node 0 is the shared empty node.
    private let left: [Int32]
    private let right: [Int32]
    private let cnt: [Int32]
    private let sum: [Double]
    private let roots: [Int32]
    private let sortedValues: [Double]

    public init(_ x: [Double]) {
        let n = x.count
        count = n
        // Ranks are unique (ties broken by position), so each leaf holds at most one value.
        let order = x.indices.sorted { x[$0] < x[$1] || (x[$0] == x[$1] && $0 < $1) }
        var rank = [Int](repeating: 0, count: n)
        for (r, i) in order.enumerated() { rank[i] = r }
        sortedValues = order.map { x[$0] }
        let capacity = 1 + n * (Int.bitWidth - max(0, n).leadingZeroBitCount + 2)
        var l = [Int32](repeating: 0, count: 1), r = [Int32](repeating: 0, count: 1)
        var c = [Int32](repeating: 0, count: 1), s = [Double](repeating: 0, count: 1)
        l.reserveCapacity(capacity); r.reserveCapacity(capacity)
        c.reserveCapacity(capacity); s.reserveCapacity(capacity)
        var rts = [Int32](repeating: 0, count: n + 1)
        for i in 0..<n {
            // Path copy from the previous root down to leaf rank[i].
            var lo = 0, hi = max(n, 1) - 1
            var old = Int(rts[i])
            let newRoot = Int32(l.count)
            l.append(0); r.append(0); c.append(0); s.append(0)
            var cur = Int(newRoot)
            let v = x[i]
            while true {
                l[cur] = l[old]; r[cur] = r[old]
                c[cur] = c[old] + 1; s[cur] = s[old] + v
                if lo == hi { break }
                let mid = (lo + hi) >> 1
                let child = Int32(l.count)
                l.append(0); r.append(0); c.append(0); s.append(0)
                if rank[i] <= mid {
                    old = Int(l[old]); l[cur] = child; hi = mid
                } else {
                    old = Int(r[old]); r[cur] = child; lo = mid + 1
                }
                cur = Int(child)
            }
            rts[i + 1] = newRoot
        }
        left = l; right = r; cnt = c; sum = s; roots = rts
    }

    public func cost(_ s: Int, _ e: Int) -> Double {
        let m = e - s
        if m <= 1 { return 0 }
        // k = number of values at or below the (lower) median, 1-based order statistic.
        var k = (m + 1) / 2
        var a = Int(roots[s]), b = Int(roots[e])
        var lo = 0, hi = count - 1
        var lowSum = 0.0
        let totalSum = sum[b] - sum[a]
        while lo != hi {
            let mid = (lo + hi) >> 1
            let lc = Int(cnt[Int(left[b])] - cnt[Int(left[a])])
            if k <= lc {
                a = Int(left[a]); b = Int(left[b]); hi = mid
            } else {
                k -= lc
                lowSum += sum[Int(left[b])] - sum[Int(left[a])]
                a = Int(right[a]); b = Int(right[b]); lo = mid + 1
            }
        }
        let med = sortedValues[lo]
        lowSum += med
        let nLow = (m + 1) / 2
        let nHigh = m - nLow
        let highSum = totalSum - lowSum
        return Swift.max(0, (highSum - med * Double(nHigh)) + (med * Double(nLow) - lowSum))
    }
}

/// Segment summaries reported with a segmentation.
func segmentMean(_ x: [Double], _ s: Int, _ e: Int) -> Double {
    var t = 0.0
    for i in s..<e { t += x[i] }
    return t / Double(e - s)
}

/// A type-erased cost for reporting (sums of costs, segment costs) outside hot loops.
public struct AnyCost: SegmentCost {
    public let model: CostModel
    public let count: Int
    private let f: (Int, Int) -> Double
    public init(_ model: CostModel, _ x: [Double]) {
        self.model = model
        count = x.count
        switch model {
        case .l2: let c = L2Cost(x); f = c.cost
        case .l1: let c = L1Cost(x); f = c.cost
        case .normal: let c = NormalCost(x); f = c.cost
        }
    }
    public func cost(_ s: Int, _ e: Int) -> Double { f(s, e) }

    /// Sum of segment costs for breakpoints in ruptures' convention (`[..., n]`).
    public func sumOfCosts(_ bkps: [Int]) -> Double {
        var s = 0, t = 0.0
        for e in bkps { t += cost(s, e); s = e }
        return t
    }
}
