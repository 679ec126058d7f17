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

@Suite struct ReportInputTests {
    @Test func jsonRoundTripIsExactAndStable() throws {
        let input = ReportFixtures.full
        let data = input.jsonData()
        let back = try ReportInput.decode(data)
        #expect(back == input)
        #expect(back.jsonData() == data, "sorted keys: a second save is byte-identical")
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("report.json")
        try input.save(jsonTo: url)
        #expect(try ReportInput.load(jsonAt: url) == input)
    }

    @Test func nonFiniteNumbersSurviveTheRoundTrip() throws {
        let back = try ReportInput.decode(ReportFixtures.degenerate.jsonData())
        let pts = try #require(back.runs.first { $0.dataset == "holes" }?.series.first?.points)
        #expect(pts[0].mean.isNaN && pts[0].low!.isNaN)
        #expect(pts[1].high == .infinity && pts[1].low == nil)
        #expect(back.runs[1].lag.steps!.isNaN)
    }

    @Test func badInputsGiveTypedErrorsNamingTheField() throws {
        var obj = try #require(try JSONSerialization.jsonObject(with: ReportFixtures.full.jsonData()) as? [String: Any])
        var runs = try #require(obj["runs"] as? [[String: Any]])
        runs[1]["lag"] = nil
        obj["runs"] = runs
        let missing = try JSONSerialization.data(withJSONObject: obj)
        #expect(throws: ReportError.invalidJSON(path: "r.json", field: "runs[1]", reason: "missing key 'lag'")) {
            try ReportInput.decode(missing, path: "r.json")
        }
        obj["resamples"] = "many"
        let mistyped = try JSONSerialization.data(withJSONObject: obj)
        #expect(throws: ReportError.invalidJSON(path: "r.json", field: "resamples", reason: "expected Int")) {
            try ReportInput.decode(mistyped, path: "r.json")
        }
        #expect(throws: ReportError.unsupportedFormat(path: "r.json", found: 99)) {
            try ReportInput.decode(Data(#"{"format": 99}"#.utf8), path: "r.json")
        }
        do {
            _ = try ReportInput.decode(Data("{not json".utf8), path: "r.json")
            Issue.record("malformed JSON was accepted")
        } catch {
            guard case .invalidJSON(let p, _, let reason) = error else { Issue.record("\(error)"); return }
            #expect(p == "r.json" && reason.contains("not valid JSON"))
            #expect(error.description.contains("r.json"))
        }
        do {
            _ = try ReportInput.load(jsonAt: URL(fileURLWithPath: "/nonexistent/report.json"))
            Issue.record("a missing file was accepted")
        } catch {
            guard case .cannotRead(let p, _) = error else { Issue.record("\(error)"); return }
            #expect(p == "/nonexistent/report.json")
        }
    }

    @Test func metricsJSONLFromTheTrainerParses() throws {
        let written = (1...3).map { StepMetrics(step: $0, totalSteps: 3, epoch: 0, loss: 2.0 / Double($0), lr: 1e-5 * Double($0), gradNorm: 1,
                                                tokens: 10, targetTokens: 5, seconds: 0.5, checkpoint: nil) }
        let lines = written.map(\.jsonLine)
        let curve = try TrainingCurve.parseMetrics(lines.joined(separator: "\n") + "\n\n", file: "metrics.jsonl", dataset: "medical", seed: 11)
        #expect(curve.points.map(\.step) == [1, 2, 3])
        #expect(curve.points.map(\.loss) == written.map(\.loss))
        #expect(curve.points.map(\.lr) == written.map(\.lr))
        #expect(throws: ReportError.invalidMetrics(file: "m.jsonl", line: 2, reason: "missing number 'lr'")) {
            try TrainingCurve.parseMetrics(lines[0] + "\n{\"step\": 2, \"loss\": 1}\n", file: "m.jsonl", dataset: "d", seed: nil)
        }
    }

    @Test func seriesBandsMatchADirectComputation() throws {
        let study = SyntheticStudy.study(hallucinationMidpoint: 20, lag: 10, checkpoints: 12, questions: 6, samples: 3)
        let recs = study.generate(seed: 7, dataset: "d", runSeed: 1)
        let series = try SeriesBands.series(records: recs, signals: SignalSpec.standard, dataset: "d", seed: 1, resamples: 200)
        #expect(series.map(\.signal) == ["evil", "hallucination", "coherence"])
        for s in series {
            for p in s.points {
                let mine = recs.filter { $0.signal == s.signal && $0.step == p.step }.map(\.score)
                #expect(abs(p.mean - mine.reduce(0, +) / Double(mine.count)) < 1e-9)
                #expect(p.answers == mine.count)
                let lo = try #require(p.low), hi = try #require(p.high)
                #expect(lo <= hi && lo <= p.mean + 1e-9 && p.mean <= hi + 1e-9, "band holds the mean at step \(p.step)")
            }
        }
        let bare = try SeriesBands.series(records: recs, signals: SignalSpec.standard, dataset: "d", seed: 1, resamples: 0)
        #expect(bare.allSatisfy { $0.points.allSatisfy { $0.low == nil && $0.high == nil } })
        #expect(SeriesBands.percentile([1, 2, 3, 4], 0.5) == 2.5)
    }

    @Test func conversionsKeepEveryNumber() throws {
        let recs = SyntheticStudy.study(hallucinationMidpoint: 40, lag: 20, checkpoints: 50, questions: 8, samples: 4)
            .generate(seed: 3, dataset: "m", runSeed: 5)
        let config = OnsetConfig(resamples: 30)
        let rep = try #require(try OnsetAnalysis.analyze(records: recs, config: config).first)
        let run = RunReport(rep, series: [])
        #expect(run.dataset == "m" && run.seed == 5)
        #expect(run.lag.steps == rep.lagSteps && run.lag.probabilityPositive == rep.probabilityLagPositive)
        #expect(run.lag.interval?.low == rep.lagInterval?.low)
        for s in rep.signals {
            let o = try #require(run.onset(s.signal))
            #expect(o.consensusStep == s.consensusStep && o.methods.map(\.step) == s.methods.map(\.step))
            #expect(o.methods.map(\.method) == s.methods.map(\.method) && o.interval?.high == s.interval?.high)
        }
        let row = try #require(compareDatasets([rep]).first)
        let sum = DatasetSummary(row)
        #expect(sum.medianLag == row.seeds.medianLag && sum.medianOnset("evil") == row.medianOnsets["evil"])
        let stats = Agreement.compare([1, 2, 3, nil], [1, 3, 2, 4])
        let a = JudgeAgreement(AgreementRow(trait: "evil", judgeA: "a", judgeB: "b", stats: stats))
        #expect(a.n == stats.n && a.pearson == stats.pearson && a.krippendorffAlpha == stats.krippendorffAlpha)
    }

    @Test func simulatedReportHasThePlantedShape() throws {
        let input = ReportFixtures.full
        #expect(input.simulated)
        let med = try #require(input.datasets.first { $0.dataset == "medical" })
        // Planted: evil's rise is centred 30 steps after hallucination's, same width.
        let lag = try #require(med.medianLag)
        #expect(abs(lag - 30) <= 10, "medical median lag \(lag)")
        for r in input.runs where r.dataset == "math" {
            #expect(r.onset("hallucination")?.consensusStep == nil, "math hallucination stays flat")
            #expect(r.lag.steps == nil)
        }
        #expect(input.training.count == input.runs.count && input.agreement.count == 3)
    }

    @Test func niceTicksAreNiceAndCoverTheRange() {
        #expect(NiceScale.ticks(0, 100, count: 6) == [0, 20, 40, 60, 80, 100])
        for (lo, hi) in [(0.0, 178.0), (0.43, 2.2), (3e-7, 1.1e-5), (-5, 5), (1000, 1003), (7, 7)] {
            let t = NiceScale.ticks(lo, hi, count: 6)
            #expect(t.count >= 2 && t.first! <= lo && t.last! >= hi, "\(lo)...\(hi): \(t)")
            let step = t[1] - t[0]
            let mantissa = step / pow(10, log10(step).rounded(.down))
            #expect([1, 2, 2.5, 5, 10].contains { abs($0 - mantissa) < 1e-6 }, "step \(step)")
        }
        #expect(!NiceScale.ticks(.nan, .infinity).isEmpty)
        #expect(NiceScale.labels([0, 0.25, 0.5]) == ["0.00", "0.25", "0.50"])
        #expect(NiceScale.labels([0, 50, 100]) == ["0", "50", "100"])
        #expect([Markup.step(122.96), Markup.step(151.5), Markup.step(-4), Markup.step(.nan), Markup.step(nil)] == ["123", "151.5", "-4", "-", "-"])
    }

    @Test func markdownHasTablesAndEscapesModelText() {
        let md = MarkdownReport.render(ReportFixtures.full)
        for h in ["## Overview", "## Onsets per method", "## Across seeds and datasets", "## Judge agreement", "## Training",
                  "## Sample answers", "## Reproducibility"] { #expect(md.contains(h)) }
        #expect(md.contains("| dataset | seed | hallucination onset [CI] | evil onset [CI] | lag [CI] | P(lag > 0) |\n|---|---|---|---|---|---|\n"))
        let overviewRows = md.components(separatedBy: "## Onsets per method")[0].split(separator: "\n").filter { $0.hasPrefix("| ") }
        #expect(overviewRows.count == 1 + ReportFixtures.full.runs.count)
        #expect(md.contains("(simulated)") && md.contains("no onset"))
        #expect(!md.contains("Is <b>"), "a question's markup is escaped")
        #expect(md.contains("    <script>alert(1)</script>"), "answers are indented code blocks, shown literally")
        #expect(Markup.markdownCell("a|b\nc<d>") == "a\\|b c&lt;d&gt;")
        let degenerate = MarkdownReport.render(ReportFixtures.degenerate)
        #expect(degenerate.contains("undefined") && degenerate.contains("No judge agreement"))
    }
}
