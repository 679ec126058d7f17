import Foundation

/// PELT (Killick, Fearnhead & Eckley 2012): the exact minimiser of
/// `sum of segment costs + pen * (number of change points)` over segmentations whose
/// breakpoints are multiples of `jump` and whose segments are at least `min_size` long.
///
/// Conventions follow ruptures 1.1.10 `Pelt`: candidate ends are the multiples of `jump` that
/// are `>= min_size`, plus `n`; the last start admitted for an end `s` is
/// `floor((s - min_size) / jump) * jump`; ties go to the smallest last breakpoint.
///
/// One deliberate difference: ruptures discards a candidate start `t` as soon as
/// `F(t) + c(t, s) > F(s)`. That rule (Killick's, with K = 0) is only valid for ends
/// `s' >= s + min_size`, because its proof glues a segment `s..<s'` onto the optimum at `s`,
/// and that segment must be admissible. With `min_size > 1` ruptures can therefore prune the
/// true optimum. We keep a pruned start alive for `min_size` more ends, which makes the search
/// exact; where this changes the answer our penalised cost is strictly lower than ruptures'.
public struct Pelt: ChangePointDetector, Sendable {
    public var model: CostModel
    public var penalty: Double
    public var minSize: Int
    public var jump: Int

    public init(model: CostModel = .l2, penalty: Double, minSize: Int = 2, jump: Int = 1) {
        self.model = model; self.penalty = penalty; self.minSize = minSize; self.jump = jump
    }

    public func detect(_ series: [Double], name: String = "series") throws(ChangePointError) -> Segmentation {
        try SearchSetup.checkPenalty(penalty)
        let m = try SearchSetup.check(series, name: name, model: model, minSize: minSize, jump: jump, nBkps: 0, method: "PELT")
        if let c = try SearchSetup.constantAnswer(series, name: name, model: model, rule: .penalty(penalty)) { return c }
        let bkps: [Int]
        switch model {
        case .l2: bkps = peltSearch(L2Cost(series), pen: penalty, minSize: m, jump: jump)
        case .l1: bkps = peltSearch(L1Cost(series), pen: penalty, minSize: m, jump: jump)
        case .normal: bkps = peltSearch(NormalCost(series), pen: penalty, minSize: m, jump: jump)
        }
        return Segmentation(breakpoints: bkps, series: series, cost: AnyCost(model, series), penalty: penalty)
    }
}

/// The PELT recursion `F(s) = min_t F(t) + c(t, s) + pen`, `F(0) = 0`, with pruning.
/// Returns breakpoints in ruptures' convention.
func peltSearch<C: SegmentCost>(_ c: C, pen: Double, minSize: Int, jump: Int) -> [Int] {
    let n = c.count
    var f = ContiguousArray<Double>(repeating: .infinity, count: n + 1)
    var prev = ContiguousArray<Int>(repeating: -1, count: n + 1)
    var defined = ContiguousArray<Bool>(repeating: false, count: n + 1)
    f[0] = 0; defined[0] = true

    // Live candidate starts (ascending) and pruned ones still needed until `expiry`.
    var live = ContiguousArray<Int>()
    var pending = ContiguousArray<(t: Int, expiry: Int)>()
    var values = ContiguousArray<Double>()
    var lastAdded = -1

    var ends = ContiguousArray<Int>()
    var k = 0
    while k < n { if k >= minSize { ends.append(k) }; k += jump }
    ends.append(n)

    for s in ends {
        let newT = ((s - minSize) / jump) * jump
        if newT != lastAdded && newT >= 0 && defined[newT] { live.append(newT); lastAdded = newT }
        if !pending.isEmpty { pending.removeAll { $0.expiry <= s } }

        var best = Double.infinity, arg = -1
        values.removeAll(keepingCapacity: true)
        for t in live {
            let v = f[t] + c.cost(t, s) + pen
            values.append(v)
            if v < best { best = v; arg = t }
        }
        for (t, _) in pending {
            let v = f[t] + c.cost(t, s) + pen
            if v < best || (v == best && t < arg) { best = v; arg = t }
        }
        f[s] = best; prev[s] = arg; defined[s] = true

        // Prune: keep t while F(t) + c(t, s) + pen <= F(s) + pen (ruptures' test).
        var w = 0
        for i in 0..<live.count {
            if values[i] <= best + pen { live[w] = live[i]; w += 1 }
            else { pending.append((live[i], s + minSize)) }
        }
        live.removeLast(live.count - w)
    }

    var bkps: [Int] = []
    var e = n
    while e > 0 { bkps.append(e); e = prev[e] }
    return bkps.reversed()
}
