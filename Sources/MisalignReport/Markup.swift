import Foundation

/// Escaping and number formatting shared by the HTML, SVG and Markdown writers. Every piece
/// of text that did not come from this module's own literals (model answers, questions,
/// dataset, judge and method names, config text) goes through `escape` before it reaches
/// HTML or SVG, so the page is well-formed XML whatever the text holds.
public enum Markup {
    /// Text for an XML/HTML text node or a quoted attribute: `& < > " '` become entities, and
    /// characters XML 1.0 forbids (C0 controls other than tab/newline/CR, U+FFFE/U+FFFF) become
    /// U+FFFD so a stray control byte in a model answer cannot make the SVG unparseable.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(u)
            default:
                if u.value < 0x20 || u.value == 0xFFFE || u.value == 0xFFFF { out += "\u{FFFD}" } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }

    /// A number for a table cell: "-" for nil or non-finite, else `digits` decimals with
    /// trailing zeros kept (tables line up).
    public static func number(_ v: Double?, digits: Int = 1) -> String {
        guard let v, v.isFinite else { return "-" }
        return String(format: "%.\(digits)f", v)
    }

    /// A step count: integers without decimals, halves (a median of two steps) with one.
    public static func step(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "-" }
        let r = (v * 10).rounded() / 10   // bootstrap percentiles interpolate: 122.96 reads as 123
        return r == r.rounded() ? String(Int(r)) : String(format: "%.1f", r)
    }

    /// "[12, 20]" for an interval, "-" when absent or non-finite.
    public static func interval(_ i: Interval?) -> String {
        guard let i, i.low.isFinite, i.high.isFinite else { return "-" }
        return "[\(step(i.low)), \(step(i.high))]"
    }

    /// A p-value or probability with 3 significant digits.
    public static func probability(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "-" }
        return String(format: "%.3g", v)
    }

    /// A coordinate for SVG: two decimals at most, no exponent, "-0" avoided.
    static func coord(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        if r == r.rounded() { return String(Int(r)) }
        return String(format: "%.2f", r)
    }

    /// A cell of a Markdown table: pipes escaped, `<` and `>` as entities (Markdown passes raw
    /// HTML through, and model text must never become markup), line breaks folded to spaces.
    public static func markdownCell(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "|", with: "\\|")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\r\n", with: " ").replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
    }
}

/// Axis ticks at "nice" numbers (1, 2, 2.5, 5 times a power of ten), Heckbert's scheme.
public enum NiceScale {
    /// About `count` ticks covering `lo...hi`; the first and last tick enclose the range.
    /// A degenerate or non-finite range gives ticks around it, never an empty list.
    public static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        var lo = lo, hi = hi
        if !lo.isFinite || !hi.isFinite { lo = 0; hi = 1 }
        if lo > hi { swap(&lo, &hi) }
        if hi - lo < 1e-12 { let pad = lo == 0 ? 1 : abs(lo) * 0.1; lo -= pad; hi += pad }
        let step = niceNumber((hi - lo) / Double(max(1, count - 1)), round: true)
        let first = (lo / step).rounded(.down) * step
        let last = (hi / step).rounded(.up) * step
        var out: [Double] = []
        var t = first
        while t <= last + step * 0.5 && out.count < 50 {
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            t = first + step * Double(out.count)
        }
        return out
    }

    /// `lo...hi` widened only when it is empty or not finite, so a scale always has extent.
    public static func span(_ lo: Double, _ hi: Double) -> (Double, Double) {
        guard lo.isFinite && hi.isFinite else { return (0, 1) }
        if hi - lo > 1e-12 { return (lo, hi) }
        let pad = lo == 0 ? 1 : abs(lo) * 0.1
        return (lo - pad, hi + pad)
    }

    /// Tick labels with as many decimals as the step needs.
    public static func labels(_ ticks: [Double]) -> [String] {
        guard ticks.count > 1 else { return ticks.map { format($0, decimals: 0) } }
        let step = abs(ticks[1] - ticks[0])
        let small = ticks.map { abs($0) }.max()! < 1e-3 && ticks.contains { $0 != 0 }
        if small { return ticks.map { $0 == 0 ? "0" : String(format: "%.1e", $0) } }
        let decimals = step >= 1 ? 0 : min(6, Int((-log10(step)).rounded(.up)) + (isHalfStep(step) ? 1 : 0))
        return ticks.map { format($0, decimals: decimals) }
    }

    static func isHalfStep(_ step: Double) -> Bool {
        let m = step / pow(10, log10(step).rounded(.down))
        return abs(m - 2.5) < 1e-9
    }

    static func format(_ v: Double, decimals: Int) -> String { String(format: "%.\(decimals)f", v) }

    static func niceNumber(_ x: Double, round: Bool) -> Double {
        guard x > 0 && x.isFinite else { return 1 }
        let e = log10(x).rounded(.down)
        let f = x / pow(10, e)
        let nf: Double
        if round { nf = f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7.5 ? 5 : 10 } else { nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10 }
        return nf * pow(10, e)
    }
}
