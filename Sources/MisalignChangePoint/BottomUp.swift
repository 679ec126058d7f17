import Foundation

/// Bottom-up segmentation (Keogh et al. 2001; ruptures 1.1.10 `BottomUp`): start from a fine
/// partition and repeatedly merge the adjacent pair whose merge costs least.
/// - The fine partition is grown as ruptures does: repeatedly take the longest segment
///   (ties: the leftmost) and split it at the admissible point (a multiple of `jump`, both sides
///   at least `min_size`) closest to its midpoint (ties: the left one); stop as soon as the
///   longest segment cannot be split.
/// - Merge gain = `c(merged) - c(left) - c(right)`; the smallest gain is merged first (ties:
///   the leftmost pair). With a penalty, merging continues while the gain is `< pen`; with
///   `n_bkps`, until `n_bkps + 1` segments remain.
/// A binary heap with lazy deletion makes it O(n log n) cost evaluations.
public struct BottomUp: ChangePointDetector, Sendable {
    public var model: CostModel
    public var rule: StoppingRule
    public var minSize: Int
    public var jump: Int

    public init(model: CostModel = .l2, rule: StoppingRule, minSize: Int = 2, jump: Int = 1) {
        self.model = model; self.rule = rule; self.minSize = minSize; self.jump = jump
    }

    public func detect(_ series: [Double], name: String = "series") throws(ChangePointError) -> Segmentation {
        try SearchSetup.run(BottomUpSearch(), series, name: name, model: model, rule: rule, minSize: minSize, jump: jump,
                            method: "bottom-up")
    }
}

/// A min-heap of merge candidates ordered by (gain, start), like ruptures' `heapq` of
/// `(gain, Bnode)` tuples whose nodes compare by start.
private struct MergeHeap {
    struct Item { var gain: Double; var start: Int; var mid: Int; var end: Int }
    var items: [Item] = []
    @inline(__always) static func less(_ a: Item, _ b: Item) -> Bool {
        a.gain < b.gain || (a.gain == b.gain && a.start < b.start)
    }
    mutating func push(_ x: Item) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if MergeHeap.less(items[i], items[p]) { items.swapAt(i, p); i = p } else { break }
        }
    }
    mutating func pop() -> Item? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && MergeHeap.less(items[l], items[m]) { m = l }
                if r < items.count && MergeHeap.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return top
    }
}

struct BottomUpSearch: RuleSearch {
    func search<C: SegmentCost>(_ c: C, rule: StoppingRule, minSize: Int, jump: Int) -> [Int] {
        bottomUpSearch(c, rule: rule, minSize: minSize, jump: jump)
    }
}

func bottomUpSearch<C: SegmentCost>(_ c: C, rule: StoppingRule, minSize: Int, jump: Int) -> [Int] {
    let n = c.count
    // 1. Grow the fine partition: longest segment first (ties: leftmost), split nearest the middle.
    var leavesStarts: [Int] = []
    do {
        // Max-heap on (length, -start) emulated with a sorted insertion into an array of pending
        // segments; the number of leaves is O(n / min_size) so a simple heap suffices.
        var heap: [(len: Int, start: Int, end: Int)] = [(n, 0, n)]
        func before(_ a: (len: Int, start: Int, end: Int), _ b: (len: Int, start: Int, end: Int)) -> Bool {
            a.len > b.len || (a.len == b.len && (a.start < b.start || (a.start == b.start && a.end < b.end)))
        }
        func push(_ x: (len: Int, start: Int, end: Int)) {
            heap.append(x)
            var i = heap.count - 1
            while i > 0 { let p = (i - 1) / 2; if before(heap[i], heap[p]) { heap.swapAt(i, p); i = p } else { break } }
        }
        func popTop() {
            let last = heap.removeLast()
            if heap.isEmpty { return }
            heap[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && before(heap[l], heap[m]) { m = l }
                if r < heap.count && before(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m); i = m
            }
        }
        while true {
            let top = heap[0]
            let mid2 = top.start + top.end           // twice the midpoint, to stay in integers
            var best = -1, bestDist = Int.max
            // Admissible points are multiples of jump in [start + min_size, end - min_size].
            var b = ((top.start + minSize + jump - 1) / jump) * jump
            while b <= top.end - minSize {
                let dist = abs(2 * b - mid2)
                if dist < bestDist { bestDist = dist; best = b }
                b += jump
            }
            if best < 0 { break }
            popTop()
            push((best - top.start, top.start, best))
            push((top.end - best, best, top.end))
        }
        leavesStarts = heap.map(\.start).sorted()
    }

    // 2. Merge. Leaves are kept as a doubly linked list over their start indices.
    let m = leavesStarts.count
    var endOf = [Int](repeating: 0, count: m), val = [Double](repeating: 0, count: m)
    var nextIdx = [Int](repeating: -1, count: m), prevIdx = [Int](repeating: -1, count: m)
    var alive = [Bool](repeating: true, count: m)
    for i in 0..<m {
        endOf[i] = i + 1 < m ? leavesStarts[i + 1] : n
        val[i] = c.cost(leavesStarts[i], endOf[i])
        nextIdx[i] = i + 1 < m ? i + 1 : -1
        prevIdx[i] = i - 1
    }
    let startOf = leavesStarts
    var heap = MergeHeap()
    // A candidate is stale once either leaf changed: we check that the leaf at `start` still
    // ends at `mid` and the leaf at `mid` still ends at `end` (leaves only grow, so a span
    // never reappears once merged away).
    var slotOfStart: [Int: Int] = [:]
    for i in 0..<m { slotOfStart[startOf[i]] = i }
    func candidate(_ i: Int, _ j: Int) -> MergeHeap.Item {
        let merged = c.cost(startOf[i], endOf[j])
        let gain = (merged.isInfinite && merged < 0) ? 0 : merged - (val[i] + val[j])
        return MergeHeap.Item(gain: gain, start: startOf[i], mid: startOf[j], end: endOf[j])
    }
    for i in 0..<(m - 1) { heap.push(candidate(i, i + 1)) }
    var leaves = m
    while true {
        var item: MergeHeap.Item? = nil
        while let x = heap.pop() {
            if let i = slotOfStart[x.start], alive[i], endOf[i] == x.mid,
               let j = slotOfStart[x.mid], alive[j], endOf[j] == x.end { item = x; break }
        }
        guard let it = item else { break }
        let go: Bool
        switch rule {
        case .count(let k): go = leaves > k + 1
        case .penalty(let p): go = it.gain < p
        }
        if !go { break }
        let i = slotOfStart[it.start]!, j = slotOfStart[it.mid]!
        // Merge j into i.
        val[i] = c.cost(startOf[i], endOf[j])
        endOf[i] = endOf[j]
        alive[j] = false
        nextIdx[i] = nextIdx[j]
        if nextIdx[j] >= 0 { prevIdx[nextIdx[j]] = i }
        slotOfStart[it.mid] = nil
        leaves -= 1
        if prevIdx[i] >= 0 { heap.push(candidate(prevIdx[i], i)) }
        if nextIdx[i] >= 0 { heap.push(candidate(i, nextIdx[i])) }
    }
    var bkps: [Int] = []
    for i in 0..<m where alive[i] { bkps.append(endOf[i]) }
    return bkps.sorted()
}
