import Foundation

/// The arithmetic and throttling behind a progress display: count, rate, ETA, and when a new
/// line or redraw is due. It holds no terminal or file handle, so a command-line bar, a log
/// line writer and a test can all drive it with their own clock.
///
/// Rate and ETA come from the work done *in this process*: work found already finished
/// (resumed from a partial file or a cache) counts towards the fraction but not the rate,
/// or a resumed run would promise an ETA of seconds for hours of work.
public struct ProgressMeter: Sendable {
    /// What is being counted, e.g. "judged" or "resamples".
    public var label: String
    /// Total units of work; 0 when unknown.
    public private(set) var total: Int
    /// Units finished so far.
    public private(set) var done = 0
    /// Seconds (on the caller's clock) at which counting started.
    public let start: Double
    /// Units already finished when counting started (excluded from the rate).
    public private(set) var initial: Int?
    /// Minimum seconds between two redraws (a terminal bar: 0.1, i.e. 10 Hz).
    public var redrawInterval: Double
    private var lastEmit: Double = -.infinity
    private var lastEmittedDone = -1

    /// `showFirst`: the first update is drawn at once (a terminal bar); false waits one
    /// interval, so a log gets no line at all for work shorter than that except the last.
    public init(label: String, total: Int, start: Double, redrawInterval: Double = 0.1, showFirst: Bool = true) {
        self.label = label; self.total = max(0, total); self.start = start; self.redrawInterval = redrawInterval
        lastEmit = showFirst ? -.infinity : start
    }

    /// Records progress; returns true when a redraw is due: the interval has passed since the
    /// last one, or the work is complete (the final state is always shown once).
    public mutating func update(done: Int, total: Int? = nil, now: Double) -> Bool {
        if let total { self.total = max(0, total) }
        if initial == nil { initial = done }
        self.done = done
        let complete = self.total > 0 && done >= self.total
        if complete && lastEmittedDone == done { return false }
        guard complete || now - lastEmit >= redrawInterval else { return false }
        lastEmit = now; lastEmittedDone = done
        return true
    }

    /// Fraction complete in [0, 1], nil when the total is unknown.
    public var fraction: Double? { total > 0 ? min(1, Double(done) / Double(total)) : nil }

    /// Units per second done in this process, nil before any.
    public func rate(now: Double) -> Double? {
        let fresh = done - (initial ?? done)
        let elapsed = now - start
        guard fresh > 0, elapsed > 0 else { return nil }
        return Double(fresh) / elapsed
    }

    /// Seconds left at the current rate, nil when unknown.
    public func eta(now: Double) -> Double? {
        guard total > 0, let r = rate(now: now) else { return nil }
        return Double(max(0, total - done)) / r
    }

    /// `label 40/100 (40%)  12.5/s  ETA 0m05s`, plus `detail` when given.
    public func line(now: Double, detail: String = "") -> String {
        var s = "\(label) \(done)" + (total > 0 ? "/\(total)" : "")
        if let f = fraction { s += String(format: " (%.0f%%)", f * 100) }
        if let r = rate(now: now) { s += "  " + Self.rate(r) }
        if done < total, let e = eta(now: now) { s += "  ETA " + Self.duration(e) }
        if done >= total && total > 0 { s += "  in " + Self.duration(now - start) }
        if !detail.isEmpty { s += "  " + detail }
        return s
    }

    /// `[#########---------------] ` + `line(...)`: the bar is `width` cells wide.
    public func bar(now: Double, width: Int = 24, detail: String = "") -> String {
        let filled = Int((fraction ?? 0) * Double(width))
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            + line(now: now, detail: detail)
    }

    /// A rate with a unit that keeps three significant digits readable (`3.2/s`, `14/min`).
    public static func rate(_ r: Double) -> String {
        if r >= 10 { return String(format: "%.0f/s", r) }
        if r >= 1 { return String(format: "%.1f/s", r) }
        let perMinute = r * 60
        return perMinute >= 1 ? String(format: "%.1f/min", perMinute) : String(format: "%.1f/h", perMinute * 60)
    }

    /// `1h02m`, `3m07s`, `0m04s`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let t = Int(max(0, seconds).rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}
