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

/// Dataset levels against their control in the report: the difference (level - control) and
/// its interval equal values computed here from the raw scores behind the stored aggregates,
/// in the report JSON, the HTML and the Markdown.
@Suite struct ReportControlTests {
    static let judge = "openai:gpt-4.1-mini"
    static let config = """
        model: model
        output: run
        datasets:
          medical:
            normal: normal.jsonl
            misaligned_2: m2.jsonl
            control: normal
        seeds: [0, 11]
        judges:
          models: ["\(judge)"]
        """

    /// Scores of (dataset, seed, step, trait): a fixed pseudo-random sample per cell.
    static func scores(_ d: String, _ seed: Int, _ step: Int, _ trait: String) -> [Double] {
        var g = SplitMix64(seed: UInt64(seed * 1000 + step), stream: UInt64(d.count * 7 + trait.count))
        let shift = d.hasSuffix("misaligned_2") ? Double(step) * 3 : 0
        return (0..<(5 + step)).map { _ in (g.uniform() * 60 + shift).rounded() }
    }

    @Test func differenceAndIntervalEqualAnIndependentComputation() throws {
        let dir = Fixtures.temporaryDirectory("report-controls")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let store = try RunStore(run: run)
        try store.setMeta("config_text", Self.config)
        try store.setMeta("config_path", dir.appendingPathComponent("study.yaml").path)
        let traits = ["evil", "hallucination", "coherence"]
        let steps = [0, 2, 4, 6]
        for d in ["medical.normal", "medical.misaligned_2"] {
            for seed in [0, 11] {
                let r = RunID(dataset: d, seed: seed)
                // The control stops one checkpoint earlier: only common steps are compared.
                for step in steps where !(d == "medical.normal" && step == 6) {
                    try store.addCheckpoint(r, step: step, path: "")
                    let verdicts = traits.flatMap { t in
                        Self.scores(d, seed, step, t).enumerated().map { StoredJudgment(questionID: "q", sample: $0.offset, trait: t, score: $0.element, status: .ok) }
                    }
                    for a in Aggregation.aggregate(verdicts, traits: traits, settings: AggregationSettings()).0 {
                        try store.addAggregate(r, step: step, judge: Self.judge, a)
                    }
                }
            }
        }
        let input = try ReportInput.load(runDirectory: run)
        let controls = try #require(input.controls)
        #expect(controls.map(\.label) == ["medical.misaligned_2 - medical.normal, seed 0", "medical.misaligned_2 - medical.normal, seed 11"])
        let z = Aggregation.normalQuantile(0.975)
        func meanAndSE(_ v: [Double]) -> (Double, Double) {
            let n = Double(v.count), m = v.reduce(0, +) / n
            let sd = (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / (n - 1)).squareRoot()
            return (m, sd / n.squareRoot())
        }
        for c in controls {
            #expect(c.signals.map(\.signal) == traits)
            for s in c.signals {
                #expect(s.points.map(\.step) == [0, 2, 4])
                for p in s.points {
                    let (ml, sl) = meanAndSE(Self.scores("medical.misaligned_2", c.seed!, p.step, s.signal))
                    let (mc, sc) = meanAndSE(Self.scores("medical.normal", c.seed!, p.step, s.signal))
                    let half = z * (sl * sl + sc * sc).squareRoot()
                    #expect(abs(p.level - ml) < 1e-9 && abs(p.control - mc) < 1e-9 && abs(p.difference - (ml - mc)) < 1e-9)
                    #expect(abs(p.low! - (ml - mc - half)) < 1e-9 && abs(p.high! - (ml - mc + half)) < 1e-9, "\(p)")
                }
            }
        }
        // The report JSON round-trips them; HTML and Markdown show a chart and a table.
        let decoded = try ReportInput.decode(input.jsonData())
        #expect(decoded.controls == input.controls)
        let html = HTMLReport.render(input)
        #expect(ReportFixtures.xmlError(html) == nil)
        let section = try #require(ReportFixtures.section(html, "controls"))
        #expect(ReportFixtures.svgElements(section).count == 2 * 2 * 3)
        let first = controls[0].signals[0].points[1]
        #expect(section.contains("<td class=\"num\">\(Markup.number(first.difference))</td>"))
        #expect(section.contains("[\(Markup.number(first.low)), \(Markup.number(first.high))]"))
        let md = MarkdownReport.render(input)
        #expect(md.contains("## Levels against their control"))
        #expect(md.contains("| evil | 2 | \(Markup.number(first.level)) | \(Markup.number(first.control)) | \(Markup.number(first.difference)) |"))
    }

    /// The held-out loss: a dashed line per seed in the loss chart, its last value in both tables.
    @Test func heldOutLossIsDrawnAndTabulated() throws {
        let curve = TrainingCurve(dataset: "medical", seed: 0, points: (1...4).map {
            .init(step: $0, loss: 2 - Double($0) * 0.1, lr: 1e-5, heldOutLoss: $0 % 2 == 0 ? 2.5 - Double($0) * 0.05 : nil)
        })
        let chart = ReportCharts.loss([curve], title: "loss")
        #expect(chart.series.map(\.label) == ["seed 0", "seed 0 held-out"] && chart.series[1].dashed)
        #expect(chart.series[1].points.map(\.x) == [2, 4] && chart.series[1].points.map(\.y) == curve.points.compactMap(\.heldOutLoss))
        let input = ReportInput(title: "t", training: [curve])
        let training = try #require(ReportFixtures.section(HTMLReport.render(input), "training"))
        #expect(training.contains("<td class=\"num\">2.300</td>") && training.contains("Dashed: the loss of the held-out examples"))
        #expect(MarkdownReport.render(input).contains("| medical, seed 0 | 4 | 1.900 | 1.600 | 2.300 |"))
        let back = try ReportInput.decode(input.jsonData())
        #expect(back.training[0].points.map(\.heldOutLoss) == curve.points.map(\.heldOutLoss) && curve.points[1].heldOutLoss != nil && curve.points[0].heldOutLoss == nil)
    }

    @Test func inputsSavedBeforeLevelsStillLoad() throws {
        var input = ReportFixtures.full
        input.controls = nil
        let json = String(decoding: input.jsonData(), as: UTF8.self)
        #expect(!json.contains("\"controls\""))
        let back = try ReportInput.decode(Data(json.utf8))
        #expect(back.controls == nil)
        #expect(ReportFixtures.section(HTMLReport.render(back), "controls")?.contains("No levels with a control") == true)
    }
}
