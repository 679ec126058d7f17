import Foundation
import MisalignModel
import MisalignPipeline

/// One run's adapter dynamics in the report (Docs/AdapterDynamics.md): the whole-adapter
/// signals per checkpoint, their onsets where detection ran on them, and a layer x module heat
/// map of one quantity at one checkpoint.
public struct AdapterDynamicsRun: Codable, Sendable, Equatable {
    public var dataset: String
    public var seed: Int?
    /// One series per adapter signal (`adapter_norm`, ...), NaN where undefined at a checkpoint.
    public var signals: [SignalSeries]
    /// Onsets of the adapter signals `detection.directions` names (point estimates: no interval).
    public var onsets: [SignalOnsets]
    public var heatMap: AdapterHeatMapView
    public init(dataset: String, seed: Int?, signals: [SignalSeries], onsets: [SignalOnsets] = [], heatMap: AdapterHeatMapView) {
        self.dataset = dataset; self.seed = seed; self.signals = signals; self.onsets = onsets; self.heatMap = heatMap
    }
    public var label: String { dataset + (seed.map { ", seed \($0)" } ?? "") }
    public func series(_ signal: String) -> SignalSeries? { signals.first { $0.signal == signal } }
}

/// A layer x module table of one per-module quantity at one checkpoint (nil: no such module,
/// or the quantity is undefined there).
public struct AdapterHeatMapView: Codable, Sendable, Equatable {
    /// `norm`, `sigma_max`, ... (`AdapterQuantity`'s names).
    public var quantity: String
    public var step: Int
    public var layers: [Int]
    /// PEFT module names (`q_proj`, ...).
    public var modules: [String]
    /// `values[i][j]`: layer `layers[i]`, module `modules[j]`.
    public var values: [[Double?]]
    public init(quantity: String, step: Int, layers: [Int], modules: [String], values: [[Double?]]) {
        self.quantity = quantity; self.step = step; self.layers = layers; self.modules = modules; self.values = values
    }

    /// The map of `quantity` at a stored checkpoint.
    public init(_ d: AdapterDynamics, step: Int, quantity: AdapterQuantity = .norm) {
        let m = d.heatMap(quantity)
        self.init(quantity: quantity.rawValue, step: step, layers: m.layers, modules: m.modules.map(\.rawValue), values: m.values)
    }
}

extension RunReader {
    /// Each run's stored dynamics (nil when no run has any: the section is then left out).
    /// The heat map is of `norm` at the run's last checkpoint with an adapter.
    func adapterDynamics(_ ids: [RunID]) throws(ReportError) -> [AdapterDynamicsRun]? {
        var out: [AdapterDynamicsRun] = []
        let named = Set((experiment?.detection.adapterSignals ?? []).map { $0.signal.rawValue })
        for id in ids {
            let stored = try read { s throws(PipelineError) in try s.adapterDynamics(id) }
            guard let last = stored.last else { continue }
            let signals = AdapterSignal.allCases.map { sig in
                SignalSeries(signal: sig.rawValue, direction: (directions[sig.rawValue] ?? .up).rawValue,
                             points: stored.map { SeriesPoint(step: $0.step, mean: $0.dynamics.value(sig) ?? .nan) })
            }
            var onsets: [SignalOnsets] = []
            if let judge, !named.isEmpty {
                let rows = try read { s throws(PipelineError) in try s.onsets(id, judge: judge) }
                for sig in AdapterSignal.allCases where named.contains(sig.rawValue) {
                    let mine = rows.filter { $0.signal == sig.rawValue }
                    guard let consensus = mine.first(where: { $0.method == "consensus" }) else { continue }
                    onsets.append(SignalOnsets(signal: sig.rawValue, direction: (directions[sig.rawValue] ?? .up).rawValue,
                                               methods: mine.filter { $0.method != "consensus" }.map { MethodOnsetEntry(method: $0.method, step: $0.step.map { Int($0) }) },
                                               consensusStep: consensus.step))
                }
            }
            out.append(AdapterDynamicsRun(dataset: id.dataset, seed: id.seed, signals: signals, onsets: onsets,
                                          heatMap: AdapterHeatMapView(last.dynamics, step: last.step)))
        }
        return out.isEmpty ? nil : out
    }
}

extension HTMLReport {
    /// The training section's "Adapter dynamics" part: per run the signals' curves and the
    /// heat map; empty when the input has no dynamics.
    static func adapterDynamics(_ input: ReportInput) -> String {
        guard let runs = input.adapterDynamics, !runs.isEmpty else { return "" }
        let e = Markup.escape
        var h = "<h3 id=\"adapter-dynamics\">Adapter dynamics</h3>\n"
        h += "<p>Read from each checkpoint&#39;s LoRA adapter alone (no forward pass, no judge): the size of the whole update "
            + "<code>dW = s B A</code> over all adapted modules, its largest singular value, how far it moved since the previous "
            + "checkpoint, and the cosines between successive updates and successive moves (Docs/AdapterDynamics.md). Sizes depend on "
            + "the learning rate, <code>lora_alpha</code> and <code>r</code>: compare shapes and onsets, not levels across runs.\(simBadge(input))</p>\n"
        for run in runs {
            let size = [AdapterSignal.norm, .sigmaMax, .incrementNorm].map(\.rawValue)
            let turn = [AdapterSignal.cosine, .incrementCosine, .sigmaGrowth].map(\.rawValue)
            h += figure([ReportCharts.adapterChart(run, signals: size, title: "\(run.label): update size", yLabel: "Frobenius / spectral norm",
                                                   width: chartWidth(columns: 2)).svg(),
                         ReportCharts.adapterChart(run, signals: turn, title: "\(run.label): direction and growth", yLabel: "cosine, ratio",
                                                   width: chartWidth(columns: 2)).svg()],
                        caption: "\(e(run.label)): the adapter signals at each checkpoint with an adapter (a cosine needs one checkpoint before it, "
                            + "an increment cosine two)." + (run.onsets.isEmpty ? "" : " Vertical lines: consensus onsets of the signals detection ran on."),
                        columns: 2)
            if !run.onsets.isEmpty {
                h += table(["signal", "direction"] + (run.onsets.first?.methods.map { e($0.method) } ?? []) + ["consensus"], run.onsets.map { o in
                    [e(o.signal), e(o.direction)] + o.methods.map { $0.step.map(String.init) ?? "none" } + [o.consensusStep.map(Markup.step) ?? "no onset"]
                }, caption: "\(e(run.label)): onsets of the adapter signals (point estimates: one value per checkpoint leaves nothing to resample, so no interval)")
            }
            h += heatMap(run)
        }
        return h
    }

    /// The heat map as a table whose cells are shaded on one scale, 0 (white) to the map's largest value.
    static func heatMap(_ run: AdapterDynamicsRun) -> String {
        let e = Markup.escape, m = run.heatMap
        let top = m.values.flatMap { $0.compactMap { $0 } }.filter(\.isFinite).map(abs).max() ?? 0
        var t = "<div class=\"table-wrap\"><table class=\"heatmap\">\n<caption>\(e(run.label)): <code>\(e(m.quantity))</code> of each "
            + "layer&#39;s and module&#39;s update at step \(m.step); shading from 0 (white) to \(significant(top)) (darkest), one scale for the table</caption>\n"
        t += "<thead><tr><th>layer</th>" + m.modules.map { "<th class=\"num\">\(e($0))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
        for (i, layer) in m.layers.enumerated() {
            t += "<tr><th>\(layer)</th>"
            for v in m.values[i] {
                guard let v, v.isFinite else { t += "<td class=\"num\">-</td>"; continue }
                let share = top > 0 ? min(1, abs(v) / top) : 0
                // White to the report's accent red, by share of the largest value.
                let (r, g, b) = (255 - share * (255 - 142), 255 - share * (255 - 42), 255 - share * (255 - 31))
                let ink = share > 0.55 ? "#ffffff" : "#1d1d1f"
                t += "<td class=\"num\" style=\"background:rgb(\(Int(r.rounded())),\(Int(g.rounded())),\(Int(b.rounded())));color:\(ink)\">\(significant(v))</td>"
            }
            t += "</tr>\n"
        }
        return t + "</tbody></table></div>\n"
    }

    /// A value with 3 significant digits ("-" for non-finite).
    static func significant(_ v: Double) -> String { v.isFinite ? String(format: "%.3g", v) : "-" }
}

extension ReportCharts {
    /// Some of a run's adapter signals on one chart (y fitted to the data), with the consensus
    /// onsets of those detection ran on as vertical lines.
    static func adapterChart(_ run: AdapterDynamicsRun, signals: [String], title: String, yLabel: String, width: Double) -> LineChart {
        let series = signals.enumerated().compactMap { i, s -> LineChart.Series? in
            guard let sr = run.series(s) else { return nil }
            return LineChart.Series(label: s, color: palette[i % palette.count], points: sr.points.map { LineChart.Point(x: Double($0.step), y: $0.mean) })
        }
        let markers = run.onsets.filter { signals.contains($0.signal) }.map { o in
            LineChart.Marker(x: o.consensusStep, label: "\(o.signal) onset\(o.consensusStep.map { " \(Markup.step($0))" } ?? ": none")",
                             color: palette[(signals.firstIndex(of: o.signal) ?? 0) % palette.count], dash: "4 3")
        }
        return fitted(LineChart(title: title, series: series, markers: markers), yLabel: yLabel, width: width)
    }

    /// A chart of the report's small multiples: y fitted to the data (not 0-100), 180 high.
    static func fitted(_ chart: LineChart, yLabel: String, width: Double) -> LineChart {
        var c = chart
        c.yDomain = nil
        c.yLabel = yLabel
        c.width = width
        c.plotHeight = 180
        return c
    }
}

extension MarkdownReport {
    /// "## Adapter dynamics": per run the signals at each checkpoint and the heat map as
    /// numbers; empty when the input has none.
    static func adapterDynamics(_ input: ReportInput) -> String {
        guard let runs = input.adapterDynamics, !runs.isEmpty else { return "" }
        let c = Markup.markdownCell, f = HTMLReport.significant
        var m = "## Adapter dynamics\n\nFrom each checkpoint's LoRA adapter alone (Docs/AdapterDynamics.md); \"-\" where a value is undefined.\n\n"
        for run in runs {
            let steps = run.signals.first?.points.map(\.step) ?? []
            m += "### \(c(run.label))\n\n"
            m += table(["step"] + run.signals.map { c($0.signal) }, steps.enumerated().map { i, step in
                ["\(step)"] + run.signals.map { $0.points.indices.contains(i) ? f($0.points[i].mean) : "-" }
            }, empty: "No checkpoints with an adapter.")
            if !run.onsets.isEmpty {
                m += table(["signal", "consensus onset"], run.onsets.map { [c($0.signal), $0.consensusStep.map(Markup.step) ?? "no onset"] },
                           empty: "")
            }
            let h = run.heatMap
            m += "`\(h.quantity)` per layer and module at step \(h.step):\n\n"
            m += table(["layer"] + h.modules.map(c), h.layers.enumerated().map { i, layer in
                ["\(layer)"] + h.values[i].map { $0.map(f) ?? "-" }
            }, empty: "No modules.")
        }
        return m
    }
}
