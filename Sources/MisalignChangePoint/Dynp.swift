import Foundation

/// Exact segmentation with a fixed number of change points by dynamic programming
/// (Bellman 1961; ruptures 1.1.10 `Dynp`): `D_k(e) = min_b D_{k-1}(b) + c(b, e)` over
/// breakpoints `b` that are multiples of `jump`, leave room for `k - 1` earlier breakpoints
/// (ruptures' `sanity_check`) and a last segment of at least `min_size`. Ties go to the smallest
/// `b`, as ruptures' `min` over its candidate list does. O(K n^2 / jump) cost evaluations.
public struct Dynp: ChangePointDetector, Sendable {
    public var model: CostModel
    public var nBkps: Int
    public var minSize: Int
    public var jump: Int

    public init(model: CostModel = .l2, nBkps: Int, minSize: Int = 2, jump: Int = 1) {
        self.model = model; self.nBkps = nBkps; self.minSize = minSize; self.jump = jump
    }

    public func detect(_ series: [Double], name: String = "series") throws(ChangePointError) -> Segmentation {
        let m = try SearchSetup.check(series, name: name, model: model, minSize: minSize, jump: jump, nBkps: nBkps, method: "Dynp")
        if let c = try SearchSetup.constantAnswer(series, name: name, model: model, rule: .count(nBkps)) { return c }
        let bkps: [Int]
        switch model {
        case .l2: bkps = dynpSearch(L2Cost(series), nBkps: nBkps, minSize: m, jump: jump)
        case .l1: bkps = dynpSearch(L1Cost(series), nBkps: nBkps, minSize: m, jump: jump)
        case .normal: bkps = dynpSearch(NormalCost(series), nBkps: nBkps, minSize: m, jump: jump)
        }
        return Segmentation(breakpoints: bkps, series: series, cost: AnyCost(model, series), penalty: nil)
    }
}

func dynpSearch<C: SegmentCost>(_ c: C, nBkps: Int, minSize: Int, jump: Int) -> [Int] {
    let n = c.count
    // d[k][e]: best cost of x[0..<e] with k breakpoints; arg[k][e]: its last breakpoint.
    var d = [ContiguousArray<Double>](repeating: ContiguousArray(repeating: .infinity, count: n + 1), count: nBkps + 1)
    var arg = [ContiguousArray<Int>](repeating: ContiguousArray(repeating: -1, count: n + 1), count: nBkps + 1)
    for e in 0...n where SearchSetup.admissible(n: e, nBkps: 0, jump: jump, minSize: minSize) {
        d[0][e] = c.cost(0, e)
    }
    if nBkps > 0 {
        for k in 1...nBkps {
            // Only the final level needs e = n alone.
            let endsToFill: [Int] = k == nBkps ? [n] : Array(0...n)
            for e in endsToFill where SearchSetup.admissible(n: e, nBkps: k, jump: jump, minSize: minSize) {
                var best = Double.infinity, bestB = -1
                var b = 0
                while b < e {
                    if e - b >= minSize && SearchSetup.admissible(n: b, nBkps: k - 1, jump: jump, minSize: minSize) {
                        let v = d[k - 1][b] + c.cost(b, e)
                        if v < best { best = v; bestB = b }
                    }
                    b += jump
                }
                d[k][e] = best; arg[k][e] = bestB
            }
        }
    }
    var bkps = [n]
    var e = n
    var k = nBkps
    while k > 0 { e = arg[k][e]; bkps.append(e); k -= 1 }
    return bkps.reversed()
}
