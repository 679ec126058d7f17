import Foundation
import MisalignPipeline

/// One run's projection signals in the report (Docs/ActivationSignals.md): per trait with a
/// vector, the per-checkpoint projection means beside the detection judge's curve of the same
/// trait, both onsets, and the lag between them.
public struct ActivationSignalsRun: Codable, Sendable, Equatable {
    public var dataset: String
    public var seed: Int?
    public var traits: [ActivationTraitSignals]
    public init(dataset: String, seed: Int?, traits: [ActivationTraitSignals]) {
        self.dataset = dataset; self.seed = seed; self.traits = traits
    }
    public var label: String { dataset + (seed.map { ", seed \($0)" } ?? "") }
}

/// One trait's judged and projection curves and onsets over one run.
public struct ActivationTraitSignals: Codable, Sendable, Equatable {
    public var trait: String
    /// The hidden-state index the signal reads (the vector's own layer).
    public var layer: Int
    /// Response-mean projection means with their intervals, in the hidden state's units.
    public var projection: SignalSeries
    /// Prompt-last-token projection means (no response token: what the prompt alone evokes).
    public var promptLast: SignalSeries
    /// The detection judge's curve of the trait, when the trait is judged.
    public var judged: SignalSeries?
    /// Consensus onsets (steps) and the projection onset's bootstrap interval.
    public var projectionOnset: Double?
    public var projectionInterval: Interval?
    public var judgedOnset: Double?
    public var judgedInterval: Interval?
    public init(trait: String, layer: Int, projection: SignalSeries, promptLast: SignalSeries, judged: SignalSeries?,
                projectionOnset: Double?, projectionInterval: Interval?, judgedOnset: Double?, judgedInterval: Interval?) {
        self.trait = trait; self.layer = layer; self.projection = projection; self.promptLast = promptLast; self.judged = judged
        self.projectionOnset = projectionOnset; self.projectionInterval = projectionInterval
        self.judgedOnset = judgedOnset; self.judgedInterval = judgedInterval
    }
    /// Projection onset minus judged onset, in steps (negative: the projection moved first).
    public var lag: Double? { projectionOnset.flatMap { p in judgedOnset.map { p - $0 } } }
}

extension RunReader {
    /// Each run's projection signals (nil when the store holds none: the part is left out).
    func activationSignals(_ ids: [RunID]) throws(ReportError) -> [ActivationSignalsRun]? {
        let pairs = try read { s throws(PipelineError) in try s.projectedTraitLayers() }
        guard !pairs.isEmpty else { return nil }
        var out: [ActivationSignalsRun] = []
        for id in ids {
            var traits: [ActivationTraitSignals] = []
            let onsets = try judge.map { j throws(ReportError) in try read { s throws(PipelineError) in try s.onsets(id, judge: j) } } ?? []
            for trait in ReportCharts.uniqueInOrder(pairs.map(\.trait)) {
                let recorded = try read { s throws(PipelineError) in try s.projectionLayer(trait: trait) }
                guard let layer = recorded ?? pairs.first(where: { $0.trait == trait })?.layer else { continue }
                func curve(_ kind: ProjectionRow.Kind, _ name: String) throws(ReportError) -> SignalSeries {
                    let rows = try read { s throws(PipelineError) in try s.projectionAggregates(id, trait: trait, layer: layer, kind: kind) }
                    return SignalSeries(signal: name, direction: (directions[name] ?? directions[trait] ?? .up).rawValue, points: rows.map {
                        SeriesPoint(step: $0.step, mean: $0.mean ?? .nan, low: $0.ciLow, high: $0.ciHigh, answers: $0.projected)
                    })
                }
                let signal = ActivationSettings.signal(trait)
                let projection = try curve(.response, signal)
                guard !projection.points.isEmpty else { continue }
                let judged = try judge.map { j throws(ReportError) in try series(id, judge: j) }?.first { $0.signal == trait }
                func consensus(_ s: String) -> (Double?, Interval?) {
                    guard let row = onsets.first(where: { $0.signal == s && $0.method == "consensus" }) else { return (nil, nil) }
                    return (row.step, row.ciLow.map { Interval(low: $0, high: row.ciHigh ?? .nan, definedFraction: row.definedFraction) })
                }
                let (po, pi) = consensus(signal), (jo, ji) = consensus(trait)
                traits.append(ActivationTraitSignals(trait: trait, layer: layer, projection: projection,
                                                     promptLast: try curve(.promptLast, "\(trait)@prompt"),
                                                     judged: judged.flatMap { $0.points.isEmpty ? nil : $0 },
                                                     projectionOnset: po, projectionInterval: pi, judgedOnset: jo, judgedInterval: ji))
            }
            if !traits.isEmpty { out.append(ActivationSignalsRun(dataset: id.dataset, seed: id.seed, traits: traits)) }
        }
        return out.isEmpty ? nil : out
    }
}

extension ReportCharts {
    /// A trait's judged and projection curves on one chart, each drawn as the share of its own
    /// range over the run (0: its lowest checkpoint mean, 1: its highest), so two units share an
    /// axis; the onsets as vertical lines.
    static func activationChart(_ run: ActivationSignalsRun, _ t: ActivationTraitSignals, width: Double) -> LineChart {
        func scaled(_ s: SignalSeries) -> [LineChart.Point] {
            let means = s.points.map(\.mean).filter(\.isFinite)
            guard let lo = means.min(), let hi = means.max() else { return [] }
            let span = hi > lo ? hi - lo : 1
            return s.points.filter { $0.mean.isFinite }.map { p in
                LineChart.Point(x: Double(p.step), y: (p.mean - lo) / span, low: p.low.map { ($0 - lo) / span }, high: p.high.map { ($0 - lo) / span })
            }
        }
        var series = [LineChart.Series(label: "\(t.trait)@proj (layer \(t.layer))", color: palette[1], points: scaled(t.projection))]
        if let j = t.judged { series.insert(LineChart.Series(label: "\(t.trait), judged", color: palette[0], points: scaled(j)), at: 0) }
        var markers = [LineChart.Marker(x: t.projectionOnset, label: "projection onset\(t.projectionOnset.map { " \(Markup.step($0))" } ?? ": none")",
                                        color: palette[1], dash: "4 3")]
        if t.judged != nil {
            markers.insert(LineChart.Marker(x: t.judgedOnset, label: "judged onset\(t.judgedOnset.map { " \(Markup.step($0))" } ?? ": none")",
                                            color: palette[0], dash: "4 3"), at: 0)
        }
        return fitted(LineChart(title: "\(run.label): \(t.trait)", series: series, markers: markers), yLabel: "share of each curve's range", width: width)
    }
}

extension HTMLReport {
    /// The lead-lag section's "Activation signals" part; empty when the input has none.
    static func activationSignals(_ input: ReportInput) -> String {
        guard let runs = input.activationSignals, !runs.isEmpty else { return "" }
        let e = Markup.escape
        var h = "<h3 id=\"activation-signals\">Activation signals</h3>\n"
        h += "<p>Each answer&#39;s mean hidden state over its response tokens, projected onto the trait&#39;s persona vector "
            + "(<code>(h &#183; v) / |v|</code> at the vector&#39;s layer), averaged per checkpoint: a signal read from the model, "
            + "not from a judge (Docs/ActivationSignals.md). On the charts each curve spans its own range; the table gives the "
            + "projection in the hidden state&#39;s units. Lag: projection onset minus judged onset (negative: the activations moved first).\(simBadge(input))</p>\n"
        for run in runs {
            h += figure(run.traits.map { ReportCharts.activationChart(run, $0, width: chartWidth(columns: 2)).svg() },
                        caption: "\(e(run.label)): judged and projection curves per trait, with their consensus onsets.", columns: 2)
            h += table(["trait", "layer", "judged onset", "projection onset", "lag (steps)", "projection, first / last checkpoint", "prompt-last, first / last"],
                       run.traits.map { t in
                           [e(t.trait), "\(t.layer)", onsetText(t.judgedOnset, t.judgedInterval, judged: t.judged != nil),
                            onsetText(t.projectionOnset, t.projectionInterval, judged: true), Markup.step(t.lag),
                            ends(t.projection), ends(t.promptLast)]
                       }, caption: "\(e(run.label)): onsets of the judged and projection signals (consensus, with the bootstrap interval)")
        }
        return h
    }

    static func onsetText(_ step: Double?, _ interval: Interval?, judged: Bool) -> String {
        guard judged else { return "not judged" }
        guard let step else { return "no onset" }
        return Markup.step(step) + (interval.map { " [\(Markup.step($0.low)), \(Markup.step($0.high))]" } ?? "")
    }

    static func ends(_ s: SignalSeries) -> String {
        let v = s.points.map(\.mean).filter(\.isFinite)
        guard let a = v.first, let b = v.last else { return "-" }
        return "\(significant(a)) / \(significant(b))"
    }
}

extension MarkdownReport {
    /// "## Activation signals": per run and trait the projection means by checkpoint and both onsets.
    static func activationSignals(_ input: ReportInput) -> String {
        guard let runs = input.activationSignals, !runs.isEmpty else { return "" }
        let c = Markup.markdownCell, f = HTMLReport.significant
        var m = "## Activation signals\n\nResponse-mean projections onto each trait's persona vector, per checkpoint (Docs/ActivationSignals.md). "
            + "Lag: projection onset minus judged onset.\n\n"
        for run in runs {
            m += "### \(c(run.label))\n\n"
            m += table(["trait", "layer", "judged onset", "projection onset", "lag (steps)"], run.traits.map { t in
                [c(t.trait), "\(t.layer)", HTMLReport.onsetText(t.judgedOnset, t.judgedInterval, judged: t.judged != nil),
                 HTMLReport.onsetText(t.projectionOnset, t.projectionInterval, judged: true), Markup.step(t.lag)]
            }, empty: "")
            let steps = Array(Set(run.traits.flatMap { $0.projection.points.map(\.step) })).sorted()
            m += table(["step"] + run.traits.flatMap { ["\(c($0.trait))@proj", "\(c($0.trait)) judged"] }, steps.map { step in
                ["\(step)"] + run.traits.flatMap { t in
                    [t.projection.points.first { $0.step == step }.map { f($0.mean) } ?? "-",
                     t.judged?.points.first { $0.step == step }.map { Markup.number($0.mean) } ?? "-"]
                }
            }, empty: "No checkpoints.")
        }
        return m
    }
}
