import Foundation

// Overview, curves and the onset / lead-lag tables.
extension HTMLReport {
    static func pct(_ input: ReportInput) -> String { "\(Int((input.confidence * 100).rounded()))%" }

    static func simBadge(_ input: ReportInput) -> String { input.simulated ? "<span class=\"badge\">simulated</span>" : "" }

    /// "step 36 (95% CI 30-42)" or "no onset".
    static func onsetPhrase(_ o: SignalOnsets?, _ input: ReportInput) -> String {
        guard let o, let s = o.consensusStep, s.isFinite else { return "no onset" }
        var t = "step \(Markup.step(s))"
        if let i = o.interval, i.low.isFinite, i.high.isFinite { t += " (\(pct(input)) CI \(Markup.step(i.low))-\(Markup.step(i.high)))" }
        return t
    }

    static func withInterval(_ v: Double?, _ i: Interval?) -> String {
        guard let v, v.isFinite else { return "no onset" }
        let iv = Markup.interval(i)
        return Markup.step(v) + (iv == "-" ? "" : " \(iv)")
    }

    static func datasets(_ input: ReportInput) -> [String] {
        ReportCharts.uniqueInOrder(input.runs.map(\.dataset) + input.datasets.map(\.dataset))
    }

    static func overview(_ input: ReportInput) -> String {
        let e = Markup.escape, lead = input.leadSignal, lagS = input.lagSignal
        var h = "<p>Each fine-tuning run's answers were judged at every checkpoint for "
        h += ReportCharts.uniqueInOrder(input.runs.flatMap { $0.series.map(\.signal) }).map { "<em>\(e($0))</em>" }.joined(separator: ", ")
        h += ". The onset of a signal is the optimizer step at which it starts to go wrong (the median of several change-point "
        h += "methods); the lag is onset(\(e(lagS))) - onset(\(e(lead))) in optimizer steps, positive when \(e(lead)) goes wrong first. "
        h += "Intervals are \(pct(input)) percentile intervals from \(input.resamples) bootstrap resamples over questions.</p>\n"
        if !input.notes.isEmpty { h += "<ul>\n" + input.notes.map { "<li>\(e($0))</li>\n" }.joined() + "</ul>\n" }
        h += calibrationWarning(input)
        guard !input.runs.isEmpty else { return h + empty("This input has no runs: nothing was judged yet.") }
        h += "<ul class=\"headline\">\n"
        for d in datasets(input) {
            let runs = input.runs.filter { $0.dataset == d }
            h += "<li><strong>\(e(d))</strong>\(simBadge(input)): "
            if runs.count == 1, let r = runs.first {
                h += "\(e(lead)) onset \(onsetPhrase(r.onset(lead), input)); \(e(lagS)) onset \(onsetPhrase(r.onset(lagS), input)); "
                h += lagPhrase(r.lag, input) + ".</li>\n"
            } else {
                let sum = input.datasets.first { $0.dataset == d }
                h += "\(runs.count) seeds; median \(e(lead)) onset \(medianPhrase(sum?.medianOnset(lead))), "
                h += "median \(e(lagS)) onset \(medianPhrase(sum?.medianOnset(lagS))); "
                if let s = sum, let m = s.medianLag, m.isFinite {
                    h += "median lag \(Markup.step(m)) steps, positive in \(s.positive) of \(s.lags.count) seeds"
                    h += s.signTestP.map { " (sign test p = \(Markup.probability($0)))" } ?? ""
                } else { h += "lag undefined (an onset is missing)" }
                h += ".</li>\n"
            }
        }
        h += "</ul>\n"
        h += table(["dataset", "seed", "\(e(lead)) onset [CI]\(calibrationBadge(input, lead))", "\(e(lagS)) onset [CI]\(calibrationBadge(input, lagS))",
                    "lag [CI]" + (calibrationBadge(input, lead).isEmpty ? calibrationBadge(input, lagS) : calibrationBadge(input, lead)),
                    "P(lag &gt; 0)"],
                   input.runs.map { r in
                       [e(r.dataset), r.seed.map(String.init) ?? "-",
                        withInterval(r.onset(lead)?.consensusStep, r.onset(lead)?.interval),
                        withInterval(r.onset(lagS)?.consensusStep, r.onset(lagS)?.interval),
                        r.lag.steps.map { withInterval($0, r.lag.interval) } ?? "undefined",
                        Markup.probability(r.lag.probabilityPositive)]
                   }, numeric: [1, 2, 3, 4, 5], caption: "Headline: consensus onsets and lag per run, in optimizer steps")
        let firsts = datasets(input).compactMap { d in input.runs.first { $0.dataset == d } }
        h += figure(firsts.map { ReportCharts.overview($0, width: chartWidth(columns: 2), plotHeight: 210, marks: marks(input)).svg() },
                    caption: "Mean judge score per checkpoint with its \(pct(input)) band (first seed of each dataset). "
                        + "Dashed lines: consensus onsets, shaded: their intervals.", columns: min(2, max(1, firsts.count)))
        return h
    }

    static func medianPhrase(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "none (no seed had an onset)" }
        return "step \(Markup.step(v))"
    }

    static func lagPhrase(_ l: LagEstimate, _ input: ReportInput) -> String {
        guard let s = l.steps, s.isFinite else { return "lag undefined (an onset is missing)" }
        var t = "lag \(Markup.step(s)) steps"
        if let i = l.interval, i.low.isFinite, i.high.isFinite { t += " (\(pct(input)) CI \(Markup.step(i.low)) to \(Markup.step(i.high)))" }
        if let p = l.probabilityPositive, p.isFinite { t += ", P(lag &gt; 0) = \(Markup.probability(p))" }
        return t
    }

    static func curves(_ input: ReportInput) -> String {
        let e = Markup.escape
        guard !input.runs.isEmpty else { return empty("No runs, so no curves.") }
        var h = "<p>Small multiples: every run, all signals, consensus onsets. Below them, each signal of each run with every "
        h += "detection method's onset (legend: method and step; <em>none</em> when the method found no onset).\(simBadge(input))</p>\n"
        for d in datasets(input) {
            let runs = input.runs.filter { $0.dataset == d }
            if runs.isEmpty { continue }
            h += "<h3>\(e(d)): all seeds</h3>\n"
            h += figure(runs.map { ReportCharts.overview($0, width: chartWidth(columns: 3), plotHeight: 190, marks: marks(input)).svg() },
                        caption: "\(e(d)): mean score per checkpoint with \(pct(input)) bootstrap band; dashed: consensus onsets.",
                        columns: min(3, runs.count))
        }
        for r in input.runs {
            h += "<h3>\(e(r.label)): methods</h3>\n"
            let signals = ReportCharts.uniqueInOrder(r.series.map(\.signal) + r.onsets.map(\.signal))
            h += figure(signals.map { ReportCharts.signalDetail(r, signal: $0, width: chartWidth(columns: 3), plotHeight: 190,
                                                                mark: input.calibrationMark(signal: $0)).svg() },
                        caption: "\(e(r.label)): each method's onset (coloured, dashed) and the consensus (black) with its interval (grey).",
                        columns: min(3, max(1, signals.count)))
            if let curves = r.byJudge, curves.count >= 2 {
                h += "<h3>\(e(r.label)): judges</h3>\n"
                h += figure(signals.map { s in ReportCharts.judges(r, signal: s, width: chartWidth(columns: 3), plotHeight: 190,
                                                                   failed: (input.calibration ?? []).filter { $0.untrusted && $0.trait == s }.map(\.judge)).svg() },
                            caption: "\(e(r.label)): each judge's mean score per checkpoint (dashed) and the per-answer mean of the judges (black).",
                            columns: min(3, max(1, signals.count)))
            }
        }
        return h
    }

    static func leadLag(_ input: ReportInput) -> String {
        let e = Markup.escape
        guard !input.runs.isEmpty else { return empty("No runs, so no onsets.") }
        let methods = ReportCharts.uniqueInOrder(input.runs.flatMap { $0.onsets.flatMap { $0.methods.map(\.method) } })
        var rows: [[String]] = []
        for r in input.runs {
            for o in r.onsets {
                var row = [e(r.label), e(o.signal) + calibrationBadge(input, o.signal)]
                for m in methods { row.append(o.methods.first { $0.method == m }.map { $0.step.map(String.init) ?? "none" } ?? "-") }
                row.append(o.consensusStep.map(Markup.step) ?? "no onset")
                row.append(Markup.interval(o.interval))
                row.append(o.interval?.definedFraction.map { Markup.number($0 * 100, digits: 0) + "%" } ?? "-")
                rows.append(row)
            }
        }
        var h = table(["run", "signal"] + methods.map(e) + ["consensus", "\(pct(input)) CI", "defined"], rows,
                      numeric: Set(2..<(methods.count + 5)),
                      caption: "Onset step per method (none: no onset), the consensus (median), its interval and the share of resamples with an onset")
        h += table(["run", "lag (steps)", "\(pct(input)) CI", "P(lag &gt; 0)", "defined"], input.runs.map { r in
            [e(r.label), r.lag.steps.map(Markup.step) ?? "undefined", Markup.interval(r.lag.interval), Markup.probability(r.lag.probabilityPositive),
             r.lag.interval?.definedFraction.map { Markup.number($0 * 100, digits: 0) + "%" } ?? "-"]
        }, numeric: [1, 2, 3, 4], caption: "Lag onset(\(e(input.lagSignal))) - onset(\(e(input.leadSignal))) per run")
        h += "<h3>Across seeds</h3>\n"
        if input.datasets.isEmpty { return h + empty("No across-seed summary in this input.") }
        h += table(["dataset", "runs", "lags by seed", "median lag", "+ / -", "sign test p", "mean P(lag &gt; 0)"], input.datasets.map { d in
            [e(d.dataset), "\(d.runs)", e(d.lags.map { "\($0.seed.map(String.init) ?? "-"): \($0.lag.map(Markup.step) ?? "none")" }.joined(separator: ", ")),
             d.medianLag.map(Markup.step) ?? "-", "\(d.positive) / \(d.negative)", Markup.probability(d.signTestP),
             Markup.probability(d.meanProbabilityLagPositive)]
        }, numeric: [1, 3, 4, 5, 6], caption: "Is the sign of the lag reproducible across fine-tuning seeds? (exact two-sided sign test, zero lags dropped)")
        return h
    }
}
