import Foundation

/// Monotonic seconds.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Best wall time of `repeats` runs of `body` after one warm-up run: the least disturbed
/// measurement on a machine shared with other work.
func bestTime(repeats: Int = 5, warmup: Bool = true, _ body: () throws -> Void) rethrows -> Double {
    if warmup { try body() }
    var best = Double.infinity
    for _ in 0..<repeats {
        let t0 = now()
        try body()
        best = min(best, now() - t0)
    }
    return best
}

/// Fixed-width table printing.
struct Table {
    let headers: [String]
    var rows: [[String]] = []
    init(_ headers: String...) { self.headers = headers }
    mutating func add(_ cells: String...) { rows.append(cells) }
    func print() {
        let widths = headers.indices.map { i in max(headers[i].count, rows.map { $0[i].count }.max() ?? 0) }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: "  ")
        }
        Swift.print(line(headers))
        Swift.print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for r in rows { Swift.print(line(r)) }
    }
}

func fmt(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }

/// Value of `--name X` in the arguments, if given.
func option(_ args: [String], _ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
