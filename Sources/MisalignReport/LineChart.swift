import Foundation

/// A line chart as a standalone SVG element, written by hand: lines with shaded interval bands,
/// vertical markers (onsets) with optional shaded intervals, nice-number ticks, and a legend
/// below the plot that names every line and marker (markers' labels carry their step, so
/// overlapping markers stay readable). NaN or missing values leave gaps; no data at all draws
/// the empty axes with `emptyMessage`. All text is escaped; the output is well-formed XML.
public struct LineChart: Sendable {
    public struct Point: Sendable {
        public var x: Double, y: Double, low: Double?, high: Double?
        public init(x: Double, y: Double, low: Double? = nil, high: Double? = nil) { self.x = x; self.y = y; self.low = low; self.high = high }
    }
    public struct Series: Sendable {
        public var label: String, color: String, points: [Point], dashed: Bool
        public init(label: String, color: String, points: [Point], dashed: Bool = false) {
            self.label = label; self.color = color; self.points = points; self.dashed = dashed
        }
    }
    public struct Marker: Sendable {
        /// nil x: listed in the legend (e.g. "cusum: no onset") but not drawn.
        public var x: Double?, label: String, color: String, dash: String?, lineWidth: Double, band: (low: Double, high: Double)?
        public init(x: Double?, label: String, color: String, dash: String? = nil, lineWidth: Double = 1.2,
                    band: (low: Double, high: Double)? = nil) {
            self.x = x; self.label = label; self.color = color; self.dash = dash; self.lineWidth = lineWidth; self.band = band
        }
    }

    public var title: String?
    public var xLabel = "optimizer step"
    public var yLabel = "score (0-100)"
    public var width = 640.0
    /// Height of the plotting area; the SVG adds the title, axes and as many legend rows as needed,
    /// so panels side by side keep equal plot areas whatever their legends hold.
    public var plotHeight = 190.0
    /// Fixed y range (judge scores: 0-100); nil fits the data with nice ticks.
    public var yDomain: (Double, Double)? = (0, 100)
    public var series: [Series]
    public var markers: [Marker]
    public var emptyMessage = "no data"
    /// Tick labels on the y axis (e.g. scientific for learning rates) when the default is unsuitable.
    public var yTickFormat: (@Sendable (Double) -> String)?

    public init(title: String? = nil, series: [Series], markers: [Marker] = []) {
        self.title = title; self.series = series; self.markers = markers
    }

    static let font = "font-family=\"Helvetica, Arial, sans-serif\""

    public func svg() -> String {
        let yt: [Double]
        if let d = yDomain { yt = NiceScale.ticks(d.0, d.1, count: 6) } else {
            let ys = series.flatMap { $0.points.flatMap { [$0.y, $0.low ?? .nan, $0.high ?? .nan] } }.filter(\.isFinite)
            yt = NiceScale.ticks(ys.min() ?? 0, ys.max() ?? 1, count: 5)
        }
        let yLabels = yTickFormat.map { f in yt.map(f) } ?? NiceScale.labels(yt)
        // The left margin fits the widest tick label and the rotated axis title.
        let left = 30 + Double(yLabels.map(\.count).max() ?? 1) * ChartLegend.charWidth, right = 14.0, top = title == nil ? 10.0 : 26.0
        let plotW = width - left - right, plotH = plotHeight
        let legend = legendLayout(maxWidth: plotW)
        let fullH = top + plotH + 42 + legend.height + 4
        let xs = series.flatMap { $0.points.map(\.x) }.filter(\.isFinite) + markers.compactMap(\.x).filter(\.isFinite)
        let hasData = series.contains { $0.points.contains { $0.x.isFinite && $0.y.isFinite } }
        // x spans the data exactly (steps start and end where training did); ticks fall inside it.
        let (x0, x1) = NiceScale.span(xs.min() ?? 0, xs.max() ?? 1)
        let xt = NiceScale.ticks(x0, x1, count: 7).filter { $0 >= x0 - 1e-9 * (x1 - x0) && $0 <= x1 + 1e-9 * (x1 - x0) }
        let (y0, y1) = (yt.first!, yt.last!)
        func px(_ x: Double) -> Double { left + (min(max(x, x0), x1) - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + plotH - (min(max(y, y0), y1) - y0) / (y1 - y0) * plotH }
        let c = Markup.coord
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(c(width)) \(c(fullH))\" width=\"\(c(width))\" height=\"\(c(fullH))\" role=\"img\""
        s += " aria-label=\"\(Markup.escape(title ?? "chart"))\" \(Self.font) font-size=\"11\">"
        s += "<rect x=\"0\" y=\"0\" width=\"\(c(width))\" height=\"\(c(fullH))\" fill=\"#ffffff\"/>"
        if let title { s += "<text x=\"\(c(left))\" y=\"17\" font-size=\"13\" font-weight=\"bold\" fill=\"#222\">\(Markup.escape(ChartLegend.fit(title, width: plotW, charWidth: 7.6)))</text>" }
        // Grid and ticks.
        for (t, label) in zip(yt, yLabels) {
            s += "<line x1=\"\(c(left))\" y1=\"\(c(py(t)))\" x2=\"\(c(left + plotW))\" y2=\"\(c(py(t)))\" stroke=\"#e4e4e4\" stroke-width=\"1\"/>"
            s += "<text x=\"\(c(left - 6))\" y=\"\(c(py(t) + 3.5))\" text-anchor=\"end\" fill=\"#444\">\(Markup.escape(label))</text>"
        }
        for (t, label) in zip(xt, NiceScale.labels(xt)) {
            s += "<line x1=\"\(c(px(t)))\" y1=\"\(c(top + plotH))\" x2=\"\(c(px(t)))\" y2=\"\(c(top + plotH + 4))\" stroke=\"#666\" stroke-width=\"1\"/>"
            s += "<text x=\"\(c(px(t)))\" y=\"\(c(top + plotH + 15))\" text-anchor=\"middle\" fill=\"#444\">\(Markup.escape(label))</text>"
        }
        s += "<text x=\"\(c(left + plotW / 2))\" y=\"\(c(top + plotH + 30))\" text-anchor=\"middle\" fill=\"#333\">\(Markup.escape(xLabel))</text>"
        s += "<text transform=\"translate(12 \(c(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" fill=\"#333\">\(Markup.escape(yLabel))</text>"
        // Marker bands under the data, marker lines over it.
        for m in markers { if let x = m.x, x.isFinite, let b = m.band, b.low.isFinite, b.high.isFinite {
            s += "<rect x=\"\(c(px(b.low)))\" y=\"\(c(top))\" width=\"\(c(max(1, px(b.high) - px(b.low))))\" height=\"\(c(plotH))\" fill=\"\(m.color)\" fill-opacity=\"0.10\"/>"
        } }
        if hasData {
            for sr in series { s += bands(sr, px: px, py: py) }
            for sr in series { s += lines(sr, px: px, py: py) }
        } else {
            s += "<text x=\"\(c(left + plotW / 2))\" y=\"\(c(top + plotH / 2))\" text-anchor=\"middle\" fill=\"#888\" font-size=\"13\">\(Markup.escape(emptyMessage))</text>"
        }
        for m in markers { if let x = m.x, x.isFinite {
            s += "<line x1=\"\(c(px(x)))\" y1=\"\(c(top))\" x2=\"\(c(px(x)))\" y2=\"\(c(top + plotH))\" stroke=\"\(m.color)\" stroke-width=\"\(c(m.lineWidth))\""
            s += (m.dash.map { " stroke-dasharray=\"\($0)\"" } ?? "") + "/>"
        } }
        s += "<rect x=\"\(c(left))\" y=\"\(c(top))\" width=\"\(c(plotW))\" height=\"\(c(plotH))\" fill=\"none\" stroke=\"#888\" stroke-width=\"1\"/>"
        s += legend.svg(originX: left, originY: top + plotH + 42)
        return s + "</svg>"
    }

    /// Contiguous runs of indices where `ok` holds (gaps split paths and bands).
    static func runs(_ n: Int, _ ok: (Int) -> Bool) -> [Range<Int>] {
        var out: [Range<Int>] = [], start: Int?
        for i in 0...n {
            if i < n && ok(i) { if start == nil { start = i } } else if let s = start { out.append(s..<i); start = nil }
        }
        return out
    }

    func bands(_ sr: Series, px: (Double) -> Double, py: (Double) -> Double) -> String {
        let p = sr.points
        var s = ""
        for r in Self.runs(p.count, { p[$0].x.isFinite && (p[$0].low?.isFinite ?? false) && (p[$0].high?.isFinite ?? false) }) where r.count > 1 {
            let upper = r.map { "\(Markup.coord(px(p[$0].x))),\(Markup.coord(py(p[$0].high!)))" }
            let lower = r.reversed().map { "\(Markup.coord(px(p[$0].x))),\(Markup.coord(py(p[$0].low!)))" }
            s += "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(sr.color)\" fill-opacity=\"0.18\" stroke=\"none\"/>"
        }
        return s
    }

    func lines(_ sr: Series, px: (Double) -> Double, py: (Double) -> Double) -> String {
        let p = sr.points
        var s = ""
        for r in Self.runs(p.count, { p[$0].x.isFinite && p[$0].y.isFinite }) {
            if r.count == 1 {
                s += "<circle cx=\"\(Markup.coord(px(p[r.lowerBound].x)))\" cy=\"\(Markup.coord(py(p[r.lowerBound].y)))\" r=\"2\" fill=\"\(sr.color)\"/>"
                continue
            }
            let pts = r.map { "\(Markup.coord(px(p[$0].x))),\(Markup.coord(py(p[$0].y)))" }.joined(separator: " ")
            s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(sr.color)\" stroke-width=\"1.6\" stroke-linejoin=\"round\""
            s += (sr.dashed ? " stroke-dasharray=\"5 3\"" : "") + "/>"
        }
        return s
    }
}
