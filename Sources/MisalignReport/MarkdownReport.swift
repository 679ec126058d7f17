import Foundation
import MisalignKernels

/// The report as a Markdown text summary (`misalign report --format md`): the headline, the
/// onset and lag tables, the across-seed and dataset tables, judge agreement, training and
/// reproducibility. No figures; sample answers are shown as indented code so any markup in
/// them stays literal.
public enum MarkdownReport {
    public static func render(_ input: ReportInput) -> String {
        let c = Markup.markdownCell, lead = input.leadSignal, lagS = input.lagSignal
        let pct = "\(Int((input.confidence * 100).rounded()))%"
        var m = "# \(c(input.title))\(input.simulated ? " (simulated)" : "")\n\n"
        if let r = input.runName { m += "Run `\(r.replacingOccurrences(of: "`", with: "'"))` · " }
        m += "misalign \(MisalignVersion.string) · \(input.runs.count) run(s) · \(pct) intervals from \(input.resamples) bootstrap resamples over questions\n\n"
        if input.simulated { m += "> **Simulated data.** Every number below comes from a simulation with planted onsets, not from a fine-tuning run.\n\n" }
        for n in input.notes { m += "- \(c(n))\n" }
        if !input.notes.isEmpty { m += "\n" }

        m += "## Overview\n\nOnsets and lags are in optimizer steps; lag = onset(\(lagS)) - onset(\(lead)), positive when \(lead) goes wrong first.\n\n"
        m += table(["dataset", "seed", "\(lead) onset [CI]\(mark(input, lead))", "\(lagS) onset [CI]\(mark(input, lagS))", "lag [CI]", "P(lag > 0)"], input.runs.map { r in
            [c(r.dataset), r.seed.map(String.init) ?? "-", HTMLReport.withInterval(r.onset(lead)?.consensusStep, r.onset(lead)?.interval),
             HTMLReport.withInterval(r.onset(lagS)?.consensusStep, r.onset(lagS)?.interval),
             r.lag.steps.map { HTMLReport.withInterval($0, r.lag.interval) } ?? "undefined", Markup.probability(r.lag.probabilityPositive)]
        }, empty: "No runs in this input.")

        m += "## Onsets per method\n\n"
        let methods = ReportCharts.uniqueInOrder(input.runs.flatMap { $0.onsets.flatMap { $0.methods.map(\.method) } })
        m += table(["run", "signal"] + methods.map(c) + ["consensus", "\(pct) CI"], input.runs.flatMap { r in
            r.onsets.map { o in
                [c(r.label), c(o.signal) + mark(input, o.signal)] + methods.map { name in o.methods.first { $0.method == name }.map { $0.step.map(String.init) ?? "none" } ?? "-" }
                    + [o.consensusStep.map(Markup.step) ?? "no onset", Markup.interval(o.interval)]
            }
        }, empty: "No onsets in this input.")

        m += activationSignals(input)
        m += "## Across seeds and datasets\n\n"
        let signals = ReportCharts.uniqueInOrder(input.runs.flatMap { $0.onsets.map(\.signal) } + input.datasets.flatMap { $0.medianOnsets.map(\.signal) })
        m += table(["dataset", "runs"] + signals.map { "\(c($0)) onset" } + ["lags by seed", "median lag", "+ / -", "sign test p", "mean P(lag > 0)"],
                   input.datasets.map { d in
                       [c(d.dataset), "\(d.runs)"] + signals.map { d.medianOnset($0).map(Markup.step) ?? "no onset" }
                           + [c(d.lags.map { "\($0.seed.map(String.init) ?? "-"): \($0.lag.map(Markup.step) ?? "none")" }.joined(separator: ", ")),
                              d.medianLag.map(Markup.step) ?? "-", "\(d.positive) / \(d.negative)", Markup.probability(d.signTestP),
                              Markup.probability(d.meanProbabilityLagPositive)]
                   }, empty: "No across-seed summary in this input.")

        m += controls(input)
        m += calibration(input)
        m += "## Judge agreement\n\n"
        m += table(["trait", "judge A", "judge B", "n", "Pearson r", "mean abs diff", "share >= 20", "Krippendorff alpha"], input.agreement.map { a in
            [c(a.trait), c(a.judgeA), c(a.judgeB), "\(a.n)", Markup.number(a.pearson, digits: 3), Markup.number(a.meanAbsoluteDifference),
             Markup.number(a.shareDifferingBy20, digits: 2), Markup.number(a.krippendorffAlpha, digits: 3)]
        }, empty: "No judge agreement in this input.")

        m += "## Training\n\n"
        m += table(["run", "steps", "first loss", "last loss", "last held-out loss", "peak lr"], input.training.map { t in
            let l = t.points.map(\.loss).filter(\.isFinite)
            return [c(t.dataset + (t.seed.map { ", seed \($0)" } ?? "")), "\(t.points.count)", Markup.number(l.first, digits: 3),
                    Markup.number(l.last, digits: 3), Markup.number(t.points.last { $0.heldOutLoss != nil }?.heldOutLoss, digits: 3), t.points.map(\.lr).filter(\.isFinite).max().map { String(format: "%.2e", $0) } ?? "-"]
        }, empty: "No training metrics in this input.")
        m += adapterDynamics(input)

        m += "## Sample answers\n\n"
        if input.samples.isEmpty { m += "No sample answers in this input.\n\n" }
        for s in input.samples {
            m += "**\(c(s.dataset))\(s.seed.map { ", seed \($0)" } ?? ""), step \(s.step), \(c(s.questionID))**: \(c(s.question))\n\n"
            m += s.answer.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n") + "\n\n"
            m += "Scores: " + (s.scores.isEmpty ? "not judged" : s.scores.map { "\(c($0.signal)) \($0.score.map { Markup.number($0, digits: 0) } ?? "no score")" }.joined(separator: ", ")) + "\n\n"
        }

        m += "## Reproducibility\n\n"
        m += table(["component", "version"], input.reproducibility.versions.map { [c($0.name), c($0.value)] }, empty: "No versions recorded.")
        m += table(["rubric", "version", "SHA-256"], input.reproducibility.rubrics.map { [c($0.name), "\($0.version)", $0.sha256] },
                   empty: "No rubric hashes recorded.")
        let cfg = input.reproducibility.configText
        if !cfg.isEmpty {
            let fence = String(repeating: "`", count: max(3, longestBacktickRun(cfg) + 1))
            m += "Configuration\(input.reproducibility.configSource.map { " (`\($0)`)" } ?? ""):\n\n\(fence)\n\(cfg)\(cfg.hasSuffix("\n") ? "" : "\n")\(fence)\n"
        }
        return m
    }

    /// A GitHub-flavoured table; `empty` is printed instead when there are no rows.
    static func table(_ header: [String], _ rows: [[String]], empty: String) -> String {
        guard !rows.isEmpty else { return empty + "\n\n" }
        var t = "| " + header.joined(separator: " | ") + " |\n|" + header.map { _ in "---|" }.joined() + "\n"
        for r in rows { t += "| " + r.joined(separator: " | ") + " |\n" }
        return t + "\n"
    }

    static func longestBacktickRun(_ s: String) -> Int {
        var best = 0, run = 0
        for ch in s { if ch == "`" { run += 1; best = max(best, run) } else { run = 0 } }
        return best
    }
}
