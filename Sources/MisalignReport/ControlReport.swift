import Foundation

// The "Levels against their control" section: charts and tables of `ReportInput.controls`.
extension ReportCharts {
    /// One signal of a level against its control: both curves (the control dashed).
    public static func levelAndControl(_ c: ControlComparison, signal: String, width: Double = 384, plotHeight: Double = 170) -> LineChart {
        let s = c.signals.first { $0.signal == signal }
        let col = color(signal: signal)
        let pts = s?.points ?? []
        var chart = LineChart(title: signal, series: [
            LineChart.Series(label: c.dataset, color: col, points: pts.map { LineChart.Point(x: Double($0.step), y: $0.level) }),
            LineChart.Series(label: "\(c.control) (control)", color: "#555555",
                             points: pts.map { LineChart.Point(x: Double($0.step), y: $0.control) }, dashed: true),
        ])
        chart.width = width; chart.plotHeight = plotHeight
        chart.emptyMessage = "no common checkpoints"
        return chart
    }

    /// One signal's difference (level - control) with its interval band and a zero line.
    public static func controlDifference(_ c: ControlComparison, signal: String, confidence: Double, width: Double = 384,
                                         plotHeight: Double = 170) -> LineChart {
        let pts = c.signals.first { $0.signal == signal }?.points ?? []
        let pct = "\(Int((confidence * 100).rounded()))%"
        var chart = LineChart(title: "\(signal): level - control", series: [
            LineChart.Series(label: "difference, \(pct) CI", color: color(signal: signal),
                             points: pts.map { LineChart.Point(x: Double($0.step), y: $0.difference, low: $0.low, high: $0.high) }),
        ], markers: [])
        let xs = pts.map { Double($0.step) }
        if let lo = xs.min(), let hi = xs.max() {
            chart.series.append(LineChart.Series(label: "no difference", color: "#999999",
                                                 points: [LineChart.Point(x: lo, y: 0), LineChart.Point(x: hi, y: 0)], dashed: true))
        }
        chart.yDomain = nil; chart.yLabel = "difference (points)"
        chart.width = width; chart.plotHeight = plotHeight
        chart.emptyMessage = "no common checkpoints"
        return chart
    }
}

extension HTMLReport {
    static func controls(_ input: ReportInput) -> String {
        let e = Markup.escape
        let list = input.controls ?? []
        guard !list.isEmpty else {
            return empty("No levels with a control in this input: give a dataset group with `control:` (Docs/Pipeline.md).")
        }
        let pct = "\(Int((input.confidence * 100).rounded()))%"
        var h = "<p>Each level of a dataset group against the group&#39;s control level, seed by seed: both curves, then the "
        h += "difference level - control at every checkpoint both reached, with its \(pct) interval (normal approximation from the two "
        h += "means&#39; intervals, d &#177; z&#183;&#8730;(se&#8321;&#178; + se&#8322;&#178;)).\(simBadge(input))</p>\n"
        for c in list {
            let signals = c.signals.map(\.signal)
            h += "<h3>\(e(c.label))</h3>\n"
            let w = chartWidth(columns: 3), cols = min(3, max(1, signals.count))
            h += figure(signals.map { ReportCharts.levelAndControl(c, signal: $0, width: w).svg() },
                        caption: "\(e(c.dataset)) (solid) and its control \(e(c.control)) (dashed).", columns: cols)
            h += figure(signals.map { ReportCharts.controlDifference(c, signal: $0, confidence: input.confidence, width: w).svg() },
                        caption: "Difference \(e(c.dataset)) - \(e(c.control)) with its \(pct) interval; the dashed line is no difference.", columns: cols)
            h += table(["signal", "step", "level", "control", "difference", "\(pct) CI"], Self.controlRows(c).map { r in r.map(e) },
                       numeric: [1, 2, 3, 4], caption: "\(e(c.label)): per checkpoint")
        }
        return h
    }

    /// Table rows of one comparison: signal, step, level mean, control mean, difference, interval.
    static func controlRows(_ c: ControlComparison) -> [[String]] {
        c.signals.flatMap { s in
            s.points.map { p in
                [s.signal, "\(p.step)", Markup.number(p.level), Markup.number(p.control), Markup.number(p.difference),
                 p.low.map { "[\(Markup.number($0)), \(Markup.number(p.high))]" } ?? "-"]
            }
        }
    }
}

extension MarkdownReport {
    static func controls(_ input: ReportInput) -> String {
        let list = input.controls ?? []
        guard !list.isEmpty else { return "" }
        let c = Markup.markdownCell
        let pct = "\(Int((input.confidence * 100).rounded()))%"
        var m = "## Levels against their control\n\nDifference = level - control per checkpoint; \(pct) interval d ± z·sqrt(se_level² + se_control²) from the two means' normal-approximation intervals.\n\n"
        for comp in list {
            m += "### \(c(comp.label))\n\n"
            m += table(["signal", "step", "level", "control", "difference", "\(pct) CI"], HTMLReport.controlRows(comp).map { $0.map(c) },
                       empty: "No common checkpoints.")
        }
        return m
    }
}
