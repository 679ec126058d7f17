import Foundation

/// Binary segmentation (greedy top-down): repeatedly split the segment whose best single split
/// reduces the cost the most. Follows ruptures 1.1.10 `Binseg`:
/// - split candidates of a segment `start..<end` are `start, start + jump, ...` (offsets from
///   the segment start, not multiples of `jump`), with both sides at least `min_size` long;
/// - within a segment the largest gain wins, ties going to the later split (Python's `max` over
///   `(gain, bkp)` tuples); across segments the first segment with the largest gain wins;
/// - with a penalty, a split is made while its gain is `> pen`; with `n_bkps`, until there are
///   that many breakpoints.
/// Each segment's best split is computed once (ruptures caches it too), so the search costs
/// O(n) cost evaluations per level.
public struct BinarySegmentation: ChangePointDetector, Sendable {
    public var model: CostModel
    public var rule: StoppingRule
    public var minSize: Int
    public var jump: Int

    public init(model: CostModel = .l2, rule: StoppingRule, minSize: Int = 2, jump: Int = 1) {
        self.model = model; self.rule = rule; self.minSize = minSize; self.jump = jump
    }

    public func detect(_ series: [Double], name: String = "series") throws(ChangePointError) -> Segmentation {
        try SearchSetup.run(BinsegSearch(), series, name: name, model: model, rule: rule, minSize: minSize, jump: jump,
                            method: "binary segmentation")
    }
}

struct BinsegSearch: RuleSearch {
    func search<C: SegmentCost>(_ c: C, rule: StoppingRule, minSize: Int, jump: Int) -> [Int] {
        binsegSearch(c, rule: rule, minSize: minSize, jump: jump)
    }
}

func binsegSearch<C: SegmentCost>(_ c: C, rule: StoppingRule, minSize: Int, jump: Int) -> [Int] {
    let n = c.count
    var cache: [Int: (bkp: Int?, gain: Double)] = [:]   // keyed by start * (n + 1) + end

    func single(_ start: Int, _ end: Int) -> (bkp: Int?, gain: Double) {
        if let hit = cache[start * (n + 1) + end] { return hit }
        let whole = c.cost(start, end)
        var best: (bkp: Int?, gain: Double) = (nil, 0)
        if !(whole.isInfinite && whole < 0) {
            var bestGain = -Double.infinity, bestBkp = -1
            var b = start
            while b < end {
                if b - start >= minSize && end - b >= minSize {
                    let g = whole - c.cost(start, b) - c.cost(b, end)
                    if g > bestGain || (g == bestGain && b > bestBkp) { bestGain = g; bestBkp = b }
                }
                b += jump
            }
            if bestBkp >= 0 { best = (bestBkp, bestGain) }
        }
        cache[start * (n + 1) + end] = best
        return best
    }

    var bkps = [n]
    while true {
        var chosen: (bkp: Int?, gain: Double)? = nil
        var s = 0
        for e in bkps {
            let cand = single(s, e)
            if chosen == nil || cand.gain > chosen!.gain { chosen = cand }
            s = e
        }
        guard let pick = chosen, let bkp = pick.bkp else { break }
        let go: Bool
        switch rule {
        case .count(let k): go = bkps.count - 1 < k
        case .penalty(let p): go = pick.gain > p
        }
        if !go { break }
        bkps.append(bkp)
        bkps.sort()
    }
    return bkps
}
