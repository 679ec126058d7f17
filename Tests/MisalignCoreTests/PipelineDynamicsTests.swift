import Foundation
import Testing
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// The `dynamics` stage on the tiny model: the stored values are `AdapterDynamics.series` of
/// the stored checkpoints, a run killed in the stage resumes to the same values without
/// recomputing finished units, detection takes adapter signals named in `detection.directions`,
/// and the report shows the curves and the heat map; with the stage off there are none.
@Suite struct PipelineDynamicsTests {
    /// One dataset, one seed, 8 steps with a checkpoint every 2: adapters at 2, 4, 6, 8 beside the base model.
    static func config(_ f: PipelineFixture, output: String, detection: String = "") -> String {
        f.config(output: output)
            .replacingOccurrences(of: "  math: math.jsonl\n", with: "")
            .replacingOccurrences(of: "seeds: [0, 11]", with: "seeds: [0]")
            .replacingOccurrences(of: "max_steps: 6", with: "max_steps: 8")
            .replacingOccurrences(of: "  resamples: 50\n", with: "  resamples: 50\n" + detection)
    }

    static let run = RunID(dataset: "medical", seed: 0)

    /// Every stored value equal to the direct computation, field by field.
    static func expectSame(_ stored: [StoredAdapterDynamics], _ direct: [AdapterDynamics], steps: [Int]) {
        #expect(stored.map(\.step) == steps)
        #expect(stored.count == direct.count)
        for (s, d) in zip(stored, direct) {
            let a = s.dynamics
            #expect(a.norm == d.norm && a.sigmaMax == d.sigmaMax && a.cosine == d.cosine && a.meanCosine == d.meanCosine
                    && a.incrementNorm == d.incrementNorm && a.incrementCosine == d.incrementCosine && a.sigmaGrowth == d.sigmaGrowth,
                    "step \(s.step): stored \(a) direct \(d)")
            #expect(a.modules == d.modules, "step \(s.step): modules differ")
            for signal in AdapterSignal.allCases { #expect(a.value(signal) == d.value(signal)) }
        }
    }

    @Test func storedDynamicsEqualTheDirectSeriesAndResumeAfterAKill() async throws {
        let f = try PipelineFixture("pipeline-dynamics")
        let cfg = try f.writeConfig(Self.config(f, output: "run", detection: "  directions: {adapter_norm: up, adapter_cosine: down}\n"))

        // Killed right after the second dynamics unit (step 4) is committed.
        let killed = try runMisalign(["run", cfg.path, "--quiet"], env: ["MISALIGN_TEST_KILL_AT": "dynamics:2"])
        #expect(killed.signaled && killed.status == SIGKILL, "expected a kill in the dynamics stage: \(killed.status) \(killed.err)")
        let runDir = f.dir.appendingPathComponent("run")
        #expect(try RunStore(run: runDir, create: false).adapterDynamics(Self.run).map(\.step) == [2, 4])

        // The resumed call computes steps 6 and 8 only (re-feeding 2 and 4 to the tracker).
        let e = try Experiment.load(from: cfg)
        let summary = try await PipelineRunner(e).run()
        #expect(summary.done["dynamics"] == 2, "\(summary.done)")
        #expect(summary.done["train"] == 0)

        let store = try RunStore(run: runDir, create: false)
        let checkpoints = try store.checkpoints(Self.run)
        #expect(checkpoints.map(\.step) == [0, 2, 4, 6, 8])
        let adapters = checkpoints.filter { !$0.path.isEmpty }
        let direct = try AdapterDynamics.series(directories: adapters.map { URL(fileURLWithPath: $0.path) })
        let stored = try store.adapterDynamics(Self.run)
        Self.expectSame(stored, direct, steps: [2, 4, 6, 8])
        // The last checkpoint has every comparison; the first none.
        #expect(stored.last?.dynamics.incrementCosine != nil && stored.first?.dynamics.cosine == nil)
        // 2 layers x 2 modules (q_proj, v_proj) per checkpoint.
        #expect(try store.count("adapter_modules") == 4 * stored.first!.dynamics.modules.count && stored.first!.dynamics.modules.count == 2 * 2)
        // The base model (step 0) has no adapter: its unit is done, nothing stored.
        #expect(try store.count("units", where: "stage = 'dynamics'") == 5)
        #expect(try store.count("adapter_dynamics", where: "step = 0") == 0)

        // Detection took the two adapter signals as well: every rule and the consensus, no interval.
        for signal in ["adapter_norm", "adapter_cosine"] {
            let rows = try store.onsets(Self.run, judge: try #require(e.detection.judge)).filter { $0.signal == signal }
            #expect(Set(rows.map(\.method)) == ["threshold", "meanshift", "consensus"], "\(signal): \(rows)")
            #expect(rows.allSatisfy { $0.ciLow == nil && $0.ciHigh == nil })
        }
        // The judged signals keep their bootstrap intervals' columns as before.
        #expect(try store.count("onsets", where: "signal = 'evil' AND method = 'consensus'") == 1)

        // A second call does nothing; the values stay.
        let again = try await PipelineRunner(e).run()
        #expect(again.nothingToDo, "\(again.done)")
        Self.expectSame(try RunStore(run: runDir, create: false).adapterDynamics(Self.run), direct, steps: [2, 4, 6, 8])
        #expect(try RunStatus.load(run: runDir).complete)

        // Exports carry both tables.
        let csv = try String(contentsOf: runDir.appendingPathComponent("exports/adapter_dynamics.csv"), encoding: .utf8).split(separator: "\n")
        #expect(csv.first == "dataset,seed,step,norm,sigma_max,cosine,mean_cosine,increment_norm,increment_cosine,sigma_growth" && csv.count == 1 + 4)

        // The report: curves and heat map in HTML, tables in Markdown.
        let input = try ReportInput.load(runDirectory: runDir)
        let dyn = try #require(input.adapterDynamics?.first)
        #expect(dyn.heatMap.step == 8 && dyn.heatMap.modules == ["q_proj", "v_proj"] && dyn.heatMap.layers == [0, 1])
        #expect(dyn.heatMap.values[1][1] == stored.last!.dynamics.module(LoRAKey(layer: 1, module: .v))?.norm)
        #expect(dyn.series("adapter_norm")?.points.map(\.mean) == direct.map(\.norm))
        #expect(dyn.onsets.map(\.signal) == ["adapter_norm", "adapter_cosine"])
        let html = HTMLReport.render(input)
        #expect(html.contains("<h3 id=\"adapter-dynamics\">Adapter dynamics</h3>") && html.contains("<table class=\"heatmap\">"))
        #expect(html.contains("medical, seed 0: update size") && html.contains("medical, seed 0: direction and growth"))
        #expect(html.contains(HTMLReport.significant(stored.last!.dynamics.modules[0].norm)))
        #expect(ReportFixtures.xmlError(html) == nil, "\(ReportFixtures.xmlError(html) ?? "")")
        let md = MarkdownReport.render(input)
        #expect(md.contains("## Adapter dynamics") && md.contains("`norm` per layer and module at step 8"))
        // The input round-trips through report.json with its dynamics (NaN where undefined).
        let json = input.jsonData()
        let back = try ReportInput.decode(json)
        #expect(back.adapterDynamics?.first?.heatMap == dyn.heatMap && back.jsonData() == json)
    }

    @Test func turnedOffThereAreNoDynamicsAndNoReportSection() async throws {
        let f = try PipelineFixture("pipeline-dynamics-off")
        let e = try Experiment.load(from: f.writeConfig(Self.config(f, output: "disabled", detection: "  adapter_dynamics: false\n")))
        #expect(e.detection.adapterDynamics == false)
        let summary = try await PipelineRunner(e).run()
        #expect(summary.done["dynamics"] == 0)
        let store = try RunStore(run: e.output, create: false)
        #expect(try store.count("adapter_dynamics") == 0 && store.count("adapter_modules") == 0 && !store.hasAdapterDynamics())
        #expect(try store.count("units", where: "stage = 'dynamics'") == 0)
        let status = try RunStatus.load(run: e.output)
        #expect(status.complete && status.stages.first { $0.stage == "dynamics" }?.total == 0)
        let input = try ReportInput.load(runDirectory: e.output)
        #expect(input.adapterDynamics == nil)
        #expect(!HTMLReport.render(input).contains("adapter-dynamics") && !MarkdownReport.render(input).contains("Adapter dynamics"))
    }

    /// An adapter signal in `detection.directions` with the stage off is refused, naming both settings.
    @Test func adapterSignalsNeedTheStage() throws {
        let dir = Fixtures.temporaryDirectory("dynamics-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        try "{}\n".write(to: dir.appendingPathComponent("med.jsonl"), atomically: true, encoding: .utf8)
        let text = "model: m\noutput: out\ndatasets: {medical: med.jsonl}\njudges: {models: [\"openai:j\"]}\n"
            + "detection: {adapter_dynamics: false, directions: {adapter_norm: up}}\n"
        do { _ = try Experiment.parse(text, file: "x.yaml", base: dir); Issue.record("accepted") } catch {
            #expect("\(error)".contains("adapter_norm") && "\(error)".contains("adapter_dynamics is false"), "\(error)")
        }
        // The key is an experiment's only: `misalign detect --scores` has no adapters to read.
        #expect(DetectionSettings.keys.first { $0.yamlKey == "adapter_dynamics" }?.sources == [.yaml])
    }
}
