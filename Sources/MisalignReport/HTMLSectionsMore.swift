import Foundation

// Dataset comparison, judge agreement, training, sample answers, reproducibility.
extension HTMLReport {
    static func comparison(_ input: ReportInput) -> String {
        let e = Markup.escape
        guard !input.datasets.isEmpty else { return empty("No dataset summaries in this input.") }
        let signals = ReportCharts.uniqueInOrder(input.runs.flatMap { $0.onsets.map(\.signal) } + input.datasets.flatMap { $0.medianOnsets.map(\.signal) })
        var h = input.datasets.count < 2
            ? "<p>Only one dataset (\(e(input.datasets[0].dataset))) is in this input; a comparison needs two or more.</p>\n"
            : "<p>The same analysis on each fine-tuning dataset. Onsets are medians across each dataset's seeds.\(simBadge(input))</p>\n"
        h += table(["dataset", "runs"] + signals.map { "\(e($0)) onset" } + ["median lag", "+ / -", "sign test p"], input.datasets.map { d in
            ([e(d.dataset), "\(d.runs)"] + signals.map { d.medianOnset($0).map(Markup.step) ?? "no onset" })
                + [d.medianLag.map(Markup.step) ?? "-", "\(d.positive) / \(d.negative)", Markup.probability(d.signTestP)]
        }, numeric: Set(1..<(signals.count + 5)), caption: "Median consensus onset (optimizer steps) per dataset")
        if !input.runs.isEmpty {
            let sig = ReportCharts.uniqueInOrder(input.runs.flatMap { $0.series.map(\.signal) })
            h += figure(sig.map { ReportCharts.comparison(input.runs, signal: $0, width: chartWidth(columns: 3)).svg() },
                        caption: "Each signal's mean score averaged over seeds, one line per dataset.", columns: min(3, max(1, sig.count)))
        }
        return h
    }

    static func agreement(_ input: ReportInput) -> String {
        let e = Markup.escape
        guard !input.agreement.isEmpty else {
            return empty("No judge agreement in this input: it needs two or more judges scoring the same answers.")
        }
        let f = { (v: Double?) in Markup.number(v, digits: 3) }
        var h = "<p>Pairs of judges over the answers both scored. A judge's bias shows as low correlation or a large share of "
        h += "answers whose scores differ by 20 points or more.\(simBadge(input))</p>\n"
        h += table(["trait", "judge A", "judge B", "n", "Pearson r", "Spearman", "mean |diff|", "share &#8805; 20", "Krippendorff &#945;", "Cohen &#954; @50"],
                   input.agreement.map { a in
                       [e(a.trait), e(a.judgeA), e(a.judgeB), "\(a.n)", f(a.pearson), f(a.spearman), Markup.number(a.meanAbsoluteDifference),
                        Markup.number(a.shareDifferingBy20, digits: 2), f(a.krippendorffAlpha), f(a.cohenKappa)]
                   }, numeric: Set(3...9), caption: "Judge agreement per trait")
        return h
    }

    static func training(_ input: ReportInput) -> String {
        let e = Markup.escape
        guard !input.training.isEmpty else { return empty("No training metrics in this input (metrics.jsonl).") + adapterDynamics(input) }
        var h = "<p>Mean cross-entropy on the assistant replies and the learning rate of each optimizer step.\(simBadge(input))</p>\n"
        for d in ReportCharts.uniqueInOrder(input.training.map(\.dataset)) {
            let curves = input.training.filter { $0.dataset == d }
            h += figure([ReportCharts.loss(curves, title: "\(d): training loss", width: chartWidth(columns: 2), plotHeight: 180).svg(),
                         ReportCharts.learningRate(curves, title: "\(d): learning rate", width: chartWidth(columns: 2), plotHeight: 180).svg()],
                        caption: "\(e(d)): one line per seed." + heldOutCaption(curves), columns: 2)
        }
        h += table(["run", "steps", "first loss", "last loss", "min loss", "last held-out loss", "peak lr"], input.training.map { t in
            let losses = t.points.map(\.loss).filter(\.isFinite), lrs = t.points.map(\.lr).filter(\.isFinite)
            return [e(t.dataset + (t.seed.map { ", seed \($0)" } ?? "")), "\(t.points.count)", Markup.number(losses.first, digits: 3),
                    Markup.number(losses.last, digits: 3), Markup.number(losses.min(), digits: 3),
                    Markup.number(t.points.last { $0.heldOutLoss != nil }?.heldOutLoss, digits: 3),
                    lrs.max().map { String(format: "%.2e", $0) } ?? "-"]
        }, numeric: [1, 2, 3, 4, 5, 6])
        return h + adapterDynamics(input)
    }

    static func samples(_ input: ReportInput) -> String {
        let e = Markup.escape
        guard !input.samples.isEmpty else { return empty("No sample answers in this input.") }
        var h = "<p>Answers at chosen checkpoints, verbatim (escaped), with each judge&#39;s score.\(simBadge(input))</p>\n"
        for s in input.samples {
            h += "<div class=\"answer\">\n<div class=\"meta\">\(e(s.dataset))\(s.seed.map { ", seed \($0)" } ?? "") · step \(s.step) · question <code>\(e(s.questionID))</code></div>\n"
            h += "<div class=\"q\">\(e(s.question))</div>\n<pre>\(e(s.answer))</pre>\n"
            let scores = s.scores.map { sc in
                "\(e(sc.signal))\(sc.judge.map { " (\(e($0)))" } ?? ""): <strong>\(sc.score.map { Markup.number($0, digits: 0) } ?? "no score")</strong>"
            }
            h += "<div class=\"scores\">\(scores.isEmpty ? "not judged" : scores.joined(separator: " · "))</div>\n</div>\n"
        }
        return h
    }

    static func reproducibility(_ input: ReportInput) -> String {
        let e = Markup.escape, r = input.reproducibility
        var h = "<h3>Versions</h3>\n"
        h += r.versions.isEmpty ? empty("No versions recorded.") : table(["component", "version"], r.versions.map { [e($0.name), "<code>\(e($0.value))</code>"] })
        h += "<h3>Rubrics</h3>\n<p>Results depend on the exact rubric text; its SHA-256 identifies it in verdicts and caches.</p>\n"
        h += r.rubrics.isEmpty ? empty("No rubric hashes recorded.")
            : table(["rubric", "version", "SHA-256"], r.rubrics.map { [e($0.name), "\($0.version)", "<code>\(e($0.sha256))</code>"] })
        h += "<h3>Configuration</h3>\n"
        if let src = r.configSource { h += "<p>From <code>\(e(src))</code>, exactly as written:</p>\n" }
        h += r.configText.isEmpty ? empty("No configuration recorded.") : "<pre class=\"config\">\(e(r.configText))</pre>\n"
        return h
    }
}
