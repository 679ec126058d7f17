import Foundation
import MisalignPipeline

/// The report's figures, built from a `ReportInput` as `LineChart`s.
public enum ReportCharts {
    /// Colour of each of the study's signals (others get palette colours).
    public static func color(signal: String, index: Int = 0) -> String {
        switch signal {
        case "evil": return "#c0392b"
        case "hallucination": return "#d68910"
        case "coherence": return "#2471a3"
        default: return palette[index % palette.count]
        }
    }

    static let palette = ["#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#555555", "#1f78b4", "#b15928"]
    static let dashes = ["6 3", "2 2", "8 3 2 3", "1 3", "10 4", "4 1 1 1"]

    static func points(_ s: SignalSeries) -> [LineChart.Point] {
        s.points.map { LineChart.Point(x: Double($0.step), y: $0.mean, low: $0.low, high: $0.high) }
    }

    static func band(_ i: Interval?) -> (low: Double, high: Double)? {
        guard let i, i.low.isFinite, i.high.isFinite else { return nil }
        return (i.low, i.high)
    }

    /// "onset 36 [30, 42]" or "no onset".
    static func onsetLabel(_ step: Double?, _ i: Interval?) -> String {
        guard let step, step.isFinite else { return "no onset" }
        let iv = Markup.interval(i)
        return "onset \(Markup.step(step))" + (iv == "-" ? "" : " \(iv)")
    }

    /// All signals of one run with their consensus onsets (the study's picture).
    /// `marks[signal]` (e.g. "failed calibration") is shown after the signal's legend entry.
    public static func overview(_ run: RunReport, width: Double = 640, plotHeight: Double = 190, title: String? = nil,
                                marks: [String: String] = [:]) -> LineChart {
        let series = run.series.enumerated().map { i, s in
            LineChart.Series(label: s.signal + (marks[s.signal].map { " (\($0))" } ?? ""), color: color(signal: s.signal, index: i), points: points(s))
        }
        let markers = run.onsets.enumerated().map { i, o in
            LineChart.Marker(x: o.consensusStep, label: "\(o.signal) \(onsetLabel(o.consensusStep, o.interval))",
                             color: color(signal: o.signal, index: i), dash: "5 3", lineWidth: 1.4, band: band(o.interval))
        }
        var c = LineChart(title: title ?? run.label, series: series, markers: markers)
        c.width = width; c.plotHeight = plotHeight
        c.emptyMessage = "no scores for this run"
        return c
    }

    /// One signal of one run with every method's onset and the consensus.
    /// `mark` (e.g. "failed calibration") is shown in the title.
    public static func signalDetail(_ run: RunReport, signal: String, width: Double = 400, plotHeight: Double = 190, mark: String? = nil) -> LineChart {
        let s = run.series(signal)
        let o = run.onset(signal)
        let col = color(signal: signal)
        var markers: [LineChart.Marker] = (o?.methods ?? []).enumerated().map { i, m in
            LineChart.Marker(x: m.step.map(Double.init), label: "\(m.method): \(m.step.map(String.init) ?? "none")",
                             color: palette[i % palette.count], dash: dashes[i % dashes.count], lineWidth: 1.2, band: band(m.interval))
        }
        markers.append(LineChart.Marker(x: o?.consensusStep, label: "consensus: \(onsetLabel(o?.consensusStep, o?.interval))",
                                        color: "#111111", lineWidth: 2, band: band(o?.interval)))
        let dir = s?.direction ?? o?.direction
        let series = s.map { [LineChart.Series(label: "mean" + (dir == "down" ? " (wrong = down)" : ""), color: col, points: points($0))] } ?? []
        var c = LineChart(title: "\(run.label): \(signal)" + (mark.map { " (\($0))" } ?? ""), series: series, markers: markers)
        c.width = width; c.plotHeight = plotHeight
        c.emptyMessage = "no \(signal) scores"
        return c
    }

    /// One signal of one run as each judge saw it, and the judges' per-answer mean (thick).
    /// Judges in `failed` failed calibration on the signal: their legend entries say so.
    public static func judges(_ run: RunReport, signal: String, width: Double = 400, plotHeight: Double = 190, failed: [String] = []) -> LineChart {
        let curves = run.byJudge ?? []
        let series = curves.enumerated().compactMap { i, j -> LineChart.Series? in
            guard let s = j.series.first(where: { $0.signal == signal }) else { return nil }
            let mean = j.judge == DetectionSettings.meanJudge
            return LineChart.Series(label: (mean ? "mean of the judges" : j.judge) + (failed.contains(j.judge) ? " (failed calibration)" : ""), color: mean ? "#111111" : palette[i % palette.count],
                                    points: s.points.map { LineChart.Point(x: Double($0.step), y: $0.mean) }, dashed: !mean)
        }
        var c = LineChart(title: "\(run.label): \(signal) by judge", series: series, markers: [])
        c.width = width; c.plotHeight = plotHeight
        c.emptyMessage = "no \(signal) scores"
        return c
    }

    /// One signal's seed-averaged curve per dataset: the dataset comparison.
    public static func comparison(_ runs: [RunReport], signal: String, width: Double = 400, plotHeight: Double = 190) -> LineChart {
        let datasets = uniqueInOrder(runs.map(\.dataset))
        let series = datasets.enumerated().map { i, d in
            LineChart.Series(label: d, color: palette[i % palette.count],
                             points: seedAverage(runs.filter { $0.dataset == d }.compactMap { $0.series(signal) }))
        }
        var c = LineChart(title: signal, series: series, markers: [])
        c.width = width; c.plotHeight = plotHeight
        return c
    }

    /// Mean across seeds at each step (steps every seed has; NaNs propagate as gaps).
    static func seedAverage(_ curves: [SignalSeries]) -> [LineChart.Point] {
        guard let first = curves.first else { return [] }
        var sums: [Int: (Double, Int)] = [:]
        for c in curves { for p in c.points { let e = sums[p.step] ?? (0, 0); sums[p.step] = (e.0 + p.mean, e.1 + 1) } }
        return first.points.map(\.step).filter { sums[$0]?.1 == curves.count }.map {
            LineChart.Point(x: Double($0), y: sums[$0]!.0 / Double(curves.count))
        }
    }

    /// Training loss (one line per seed) of one dataset's runs.
    public static func loss(_ curves: [TrainingCurve], title: String, width: Double = 400, plotHeight: Double = 190) -> LineChart {
        var c = training(curves, title: title, yLabel: "loss", value: \.loss, width: width, plotHeight: plotHeight)
        c.series += heldOutSeries(curves)
        return c
    }

    /// Learning rate per step (one line per seed) of one dataset's runs.
    public static func learningRate(_ curves: [TrainingCurve], title: String, width: Double = 400, plotHeight: Double = 190) -> LineChart {
        // Rates like 1e-5 read better as 1.0 on an axis titled "x 1e-5" than as "1.0e-05" ticks.
        let peak = curves.flatMap { $0.points.map(\.lr) }.filter { $0.isFinite && $0 > 0 }.max() ?? 1
        let exponent = peak < 0.01 ? Int(log10(peak).rounded(.down)) : 0
        let scale = pow(10, Double(-exponent))
        let scaled = curves.map { c in
            TrainingCurve(dataset: c.dataset, seed: c.seed, points: c.points.map { .init(step: $0.step, loss: $0.loss, lr: $0.lr * scale) })
        }
        return training(scaled, title: title, yLabel: exponent == 0 ? "learning rate" : "learning rate (\u{00D7} 1e\(exponent))",
                        value: \.lr, width: width, plotHeight: plotHeight)
    }

    static func training(_ curves: [TrainingCurve], title: String, yLabel: String, value: KeyPath<TrainingCurve.Point, Double>,
                         width: Double, plotHeight: Double) -> LineChart {
        let series = curves.enumerated().map { i, t in
            LineChart.Series(label: t.seed.map { "seed \($0)" } ?? t.dataset, color: palette[i % palette.count],
                             points: t.points.map { LineChart.Point(x: Double($0.step), y: $0[keyPath: value]) })
        }
        var c = LineChart(title: title, series: series, markers: [])
        c.yLabel = yLabel; c.yDomain = nil; c.width = width; c.plotHeight = plotHeight
        c.emptyMessage = "no training metrics"
        return c
    }

    static func uniqueInOrder(_ v: [String]) -> [String] {
        var seen = Set<String>()
        return v.filter { seen.insert($0).inserted }
    }
}
