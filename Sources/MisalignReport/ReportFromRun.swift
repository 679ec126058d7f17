import Foundation
import MisalignChangePoint
import MisalignPipeline

/// What `ReportInput.load(runDirectory:)` adds to what the run store holds.
public struct RunReportOptions: Sendable {
    /// Answers shown per chosen checkpoint (the highest lag-signal scores there).
    public var samplesPerCheckpoint = 2
    /// Notes shown in the overview (e.g. what in a demo run is a stand-in).
    public var notes: [String] = []
    /// Page title.
    public var title = "Emergent misalignment during LoRA fine-tuning"
    public init(samplesPerCheckpoint: Int = 2, notes: [String] = []) {
        self.samplesPerCheckpoint = samplesPerCheckpoint; self.notes = notes
    }
}

extension ReportInput {
    /// The report of a pipeline run directory (`misalign run`), read from its `store.sqlite`
    /// only: per dataset and seed the per-checkpoint means and intervals of the detection judge
    /// (the store's `aggregates`), every method's onset and the consensus with its interval
    /// (`onsets`), the lag (`lags`), the across-seed summary and dataset comparison
    /// (`compareDatasets` over the stored onsets, equal to `lag_summary`), agreement between
    /// judges (when 2+ judged), loss and learning rate (`metrics`), answers at the first
    /// checkpoint, the one nearest the lag signal's onset and the last, the config text as
    /// recorded at the run's last call, versions and the rubrics' SHA-256. Works on a run in
    /// progress too: what is not computed yet is shown as missing.
    public static func load(runDirectory run: URL, options: RunReportOptions = RunReportOptions()) throws(ReportError) -> ReportInput {
        let r = try RunReader(run: run)
        let runs = try r.runIDs()
        if runs.isEmpty { throw .notARun(path: run.path, reason: "the store holds no checkpoints yet; run `misalign run CONFIG` first") }
        var reports: [OnsetReport] = [], runReports: [RunReport] = []
        for id in runs {
            let onset = try r.onsetReport(id)
            var rr = RunReport(onset, series: try r.series(id))
            rr.lag = try r.lag(id)
            rr.byJudge = try r.judgeCurves(id)
            reports.append(onset)
            runReports.append(rr)
        }
        let order = r.datasetOrder(runs)
        let datasets = compareDatasets(reports.filter { !$0.signals.isEmpty }).map(DatasetSummary.init)
            .sorted { (order.firstIndex(of: $0.dataset) ?? .max) < (order.firstIndex(of: $1.dataset) ?? .max) }
        var input = ReportInput(title: options.title, runName: run.standardizedFileURL.lastPathComponent, simulated: false,
                                notes: options.notes + r.notes, confidence: r.experiment?.detection.confidence ?? 0.95,
                                resamples: try r.resamples(), leadSignal: r.lead, lagSignal: r.lagSignal,
                                runs: runReports, datasets: datasets)
        input.controls = ControlComparison.all(runs: runReports, controls: r.experiment?.controls ?? [:], confidence: input.confidence)
        input.agreement = try r.agreement()
        let calibrations = try r.read { s throws(PipelineError) in try s.calibrations() }.filter { r.judges.contains($0.judge) || (r.experiment?.judges.names.contains($0.judge) ?? false) }
        if !calibrations.isEmpty {
            input.calibration = calibrations.map(JudgeCalibrationEntry.init)
            input.curveJudges = r.judge == DetectionSettings.meanJudge ? r.judges : r.judge.map { [$0] }
        }
        for id in runs { input.training.append(try r.training(id)) }
        input.adapterDynamics = try r.adapterDynamics(runs)
        input.activationSignals = try r.activationSignals(runs)
        input.samples = try r.samples(runs: runs, reports: runReports, perCheckpoint: options.samplesPerCheckpoint)
        input.reproducibility = try r.reproducibility()
        return input
    }
}

/// Reads one run directory's store for the report.
struct RunReader {
    let run: URL
    let store: RunStore
    /// The config recorded in the store, when it still parses (paths in it may have moved).
    let experiment: Experiment?
    let judge: String?
    let judges: [String]
    var notes: [String] = []

    init(run: URL) throws(ReportError) {
        self.run = run
        do { store = try RunStore(run: run, create: false) } catch {
            throw .notARun(path: run.path, reason: "\(error)")
        }
        var exp: Experiment?
        var notes: [String] = []
        if let text = try? store.meta("config_text") {
            let file = (try? store.meta("config_path")) ?? run.appendingPathComponent("config.yaml").path
            do {
                exp = try Experiment.parse(text, file: file, base: URL(fileURLWithPath: file).deletingLastPathComponent())
            } catch {
                notes.append("The recorded config no longer parses here (\(error)); question texts and rubric versions come from the built-in sets.")
            }
        }
        experiment = exp
        self.notes = notes
        let stored = (try? store.judgeNames()) ?? []
        judges = exp.map { e in e.judges.names.filter(stored.contains) + stored.filter { !e.judges.names.contains($0) } } ?? stored
        let onsetJudge = (try? store.onsetJudge()) ?? nil
        // The judge detection last ran on (a plug-in judge set in code is not in the recorded
        // config), else the config's.
        judge = onsetJudge ?? exp?.detection.judge ?? judges.first
    }

    var lead: String { experiment?.detection.lead ?? "hallucination" }
    var lagSignal: String { experiment?.detection.lag ?? "evil" }
    var directions: [String: Direction] { experiment?.detection.directions ?? DetectionSettings().directions }

    /// A read of the store, its error as the report's.
    func read<T>(_ body: (RunStore) throws(PipelineError) -> T) throws(ReportError) -> T {
        do { return try body(store) } catch { throw .notARun(path: run.path, reason: "\(error)") }
    }

    /// Runs with a checkpoint, in the config's dataset order, then by seed.
    func runIDs() throws(ReportError) -> [RunID] {
        let ids = try read { s throws(PipelineError) in try s.checkpointRuns() }
        let order = datasetOrder(ids)
        return ids.sorted { (order.firstIndex(of: $0.dataset)!, $0.seed) < (order.firstIndex(of: $1.dataset)!, $1.seed) }
    }

    func datasetOrder(_ ids: [RunID]) -> [String] {
        var order = experiment.map { $0.datasets.map(\.name) + $0.externalCheckpoints.map(\.dataset) } ?? []
        for d in Set(ids.map(\.dataset)).sorted() where !order.contains(d) { order.append(d) }
        return order
    }

    /// Signals in the judges' trait order that have a direction.
    func signals() throws(ReportError) -> [String] {
        let stored = try read { s throws(PipelineError) in try s.aggregatedTraits() }
        let traits = experiment.map { e in e.judges.traits.filter(stored.contains) } ?? stored
        return traits.filter { directions[$0] != nil }
    }

    /// The stored per-checkpoint means and intervals of the detection judge.
    func series(_ id: RunID) throws(ReportError) -> [SignalSeries] {
        guard let judge else { return [] }
        return try series(id, judge: judge)
    }

    /// With two or more judges, each judge's stored curves and the judges' mean (`mean`), when
    /// aggregated; nil with one judge.
    func judgeCurves(_ id: RunID) throws(ReportError) -> [JudgeCurves]? {
        guard judges.count >= 2 else { return nil }
        let stored = try read { s throws(PipelineError) in try s.aggregatedJudges(id) }
        return try (judges + [DetectionSettings.meanJudge]).filter(stored.contains).map { j throws(ReportError) in
            JudgeCurves(judge: j, series: try series(id, judge: j))
        }
    }

    func series(_ id: RunID, judge: String) throws(ReportError) -> [SignalSeries] {
        var out: [SignalSeries] = []
        for s in try signals() {
            let points = try read { st throws(PipelineError) in try st.aggregates(id, judge: judge, trait: s) }.map {
                SeriesPoint(step: $0.step, mean: $0.aggregate.mean ?? .nan, low: $0.aggregate.ciLow, high: $0.aggregate.ciHigh, answers: $0.aggregate.scored)
            }
            out.append(SignalSeries(signal: s, direction: (directions[s] ?? .up).rawValue, points: points))
        }
        return out
    }

    /// The stored onsets as the change-point layer's report (empty before detection ran).
    func onsetReport(_ id: RunID) throws(ReportError) -> OnsetReport {
        var report = OnsetReport(dataset: id.dataset, seed: id.seed, signals: [], lagSteps: nil, lagInterval: nil,
                                 probabilityLagPositive: nil, resamples: 0)
        guard let judge else { return report }
        let steps = try read { s throws(PipelineError) in try s.checkpoints(id).map(\.step) }
        let rows = try read { s throws(PipelineError) in try s.onsets(id, judge: judge) }
        let methodOrder = experiment?.detection.methods ?? DetectionSettings.allMethods
        for s in try signals() {
            let mine = rows.filter { $0.signal == s }
            guard let consensus = mine.first(where: { $0.method == "consensus" }) else { continue }
            let methods = mine.filter { $0.method != "consensus" }
                .sorted { (methodOrder.firstIndex(of: $0.method) ?? .max) < (methodOrder.firstIndex(of: $1.method) ?? .max) }
                .map { row -> MethodOnset in
                    let step = row.step.map { Int($0) }
                    return MethodOnset(method: row.method, index: step.flatMap { steps.firstIndex(of: $0) }, step: step)
                }
            let interval = consensus.ciLow.map { BootstrapInterval(low: $0, high: consensus.ciHigh ?? .nan, definedFraction: consensus.definedFraction ?? .nan) }
            let found = methods.compactMap(\.step)
            report.signals.append(SignalOnset(signal: s, direction: directions[s] ?? .up, methods: methods, consensusStep: consensus.step,
                                              spread: found.isEmpty ? nil : (found.min()!, found.max()!), interval: interval))
        }
        if let lag = try read({ s throws(PipelineError) in try s.lag(id, judge: judge) }) {
            report.lagSteps = lag.steps
            report.probabilityLagPositive = lag.probabilityPositive
            report.resamples = lag.resamples
        }
        return report
    }

    /// The stored lag with its interval (the store keeps no defined share for the lag).
    func lag(_ id: RunID) throws(ReportError) -> LagEstimate {
        guard let judge, let row = try read({ s throws(PipelineError) in try s.lag(id, judge: judge) }) else { return LagEstimate(steps: nil) }
        let interval = row.ciLow.map { Interval(low: $0, high: row.ciHigh ?? .nan) }
        return LagEstimate(steps: row.steps, interval: interval, probabilityPositive: row.probabilityPositive)
    }

    func resamples() throws(ReportError) -> Int {
        try read { s throws(PipelineError) in try s.maxLagResamples() } ?? experiment?.detection.resamples ?? 0
    }
}
