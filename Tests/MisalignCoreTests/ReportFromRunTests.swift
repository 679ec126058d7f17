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

/// The report of a real (tiny) pipeline run: every section filled from the store, the numbers
/// equal to the store's, model text escaped, and `misalign report RUN_DIR`.
@Suite struct ReportFromRunTests {
    @Test func reportOfATinyRunShowsTheStoresNumbers() async throws {
        let f = try PipelineFixture("report-run")
        // Two judges (the same mock under two names) so judge agreement has something to show.
        let two = "models: [\"openai:mock-judge@\(f.server.baseURL)\", \"openai:second-judge@\(f.server.baseURL)\"]"
        let text = f.config(maxInFlight: 8).replacingOccurrences(of: "models: [\"openai:mock-judge@\(f.server.baseURL)\"]", with: two)
        let e = try Experiment.load(from: f.writeConfig(text))
        try await PipelineRunner(e).run()
        let store = try RunStore(run: e.output)  // a writer: the test edits answers below
        // Model text that must not reach the page as markup: every answer of one checkpoint.
        let hostile = ReportFixtures.hostileAnswer
        _ = try store.rows("UPDATE generations SET text = ?1 || sample WHERE dataset = 'medical' AND seed = 0 AND step = 0", [.text(hostile)])

        let input = try ReportInput.load(runDirectory: e.output)
        let judge = e.detection.judge!
        #expect(input.runs.map(\.label) == ["medical, seed 0", "medical, seed 11", "math, seed 0", "math, seed 11"])
        for run in input.runs {
            let key: [SQLValue] = [.text(run.dataset), .int(Int64(run.seed!)), .text(judge)]
            #expect(run.series.map(\.signal) == ["evil", "hallucination", "coherence"])
            for s in run.series {
                let rows = try store.rows("SELECT step, mean, ci_low, ci_high, scored FROM aggregates WHERE dataset = ?1 AND seed = ?2 AND judge = ?3 AND trait = ?4 ORDER BY step",
                                          key + [.text(s.signal)])
                #expect(rows.count == 4 && s.points.count == 4)
                for (p, r) in zip(s.points, rows) {
                    #expect(p.step == r[0].int && p.mean == r[1].double && p.low == r[2].double && p.high == r[3].double && p.answers == r[4].int)
                }
            }
            let onsets = try store.rows("SELECT signal, method, step, ci_low, ci_high FROM onsets WHERE dataset = ?1 AND seed = ?2 AND judge = ?3", key)
            #expect(run.onsets.count == 3)
            for o in run.onsets {
                for r in onsets where r[0].text == o.signal {
                    if r[1].text == "consensus" {
                        #expect(o.consensusStep == r[2].double && o.interval?.low == r[3].double && o.interval?.high == r[4].double)
                    } else {
                        #expect(o.methods.first { $0.method == r[1].text }?.step.map(Double.init) == r[2].double)
                    }
                }
                #expect(o.methods.map(\.method) == ["threshold", "meanshift"])
            }
            let lag = try store.rows("SELECT lag_steps, ci_low, ci_high, p_positive FROM lags WHERE dataset = ?1 AND seed = ?2 AND judge = ?3", key)[0]
            #expect(run.lag.steps == lag[0].double && run.lag.interval?.low == lag[1].double && run.lag.interval?.high == lag[2].double
                    && run.lag.probabilityPositive == lag[3].double)
        }
        // Across seeds: the same summary the store computed.
        #expect(input.datasets.map(\.dataset) == ["medical", "math"])
        for d in input.datasets {
            let r = try store.rows("SELECT seeds, median_lag, positive, negative, sign_test_p FROM lag_summary WHERE dataset = ?1 AND judge = ?2",
                                   [.text(d.dataset), .text(judge)])[0]
            #expect(d.runs == r[0].int && d.medianLag == r[1].double && d.positive == r[2].int && d.negative == r[3].int && d.signTestP == r[4].double)
        }
        // Agreement: both judges scored every answer identically (one mock server).
        #expect(input.agreement.count == 3)
        for a in input.agreement { #expect(a.n == 64 && a.meanAbsoluteDifference == 0, "\(a)") }
        // Training: the store's metrics.
        #expect(input.training.count == 4)
        let loss = try store.rows("SELECT step, loss, lr FROM metrics WHERE dataset = 'math' AND seed = 11 ORDER BY step")
        #expect(input.training[3].points.map(\.step) == loss.map { $0[0].int! } && input.training[3].points.map(\.loss) == loss.map { $0[1].double! })
        // Samples: first, onset and last checkpoints of each dataset's first seed.
        #expect(Set(input.samples.map(\.dataset)) == ["medical", "math"])
        #expect(input.samples.contains { $0.step == 0 } && input.samples.contains { $0.step == 6 })
        #expect(input.samples.contains { $0.answer.hasPrefix(hostile) })
        for s in input.samples { #expect(s.scores.count == 6 && s.question != s.questionID) }
        // Reproducibility: the config as written, the rubrics the verdicts used.
        #expect(input.reproducibility.configText == text)
        #expect(input.reproducibility.rubrics.map(\.name) == ["coherence", "evil", "hallucination"])
        for r in input.reproducibility.rubrics { #expect(r.sha256 == RubricSet.builtin.rubrics[r.name]!.sha256 && r.version == RubricSet.builtin.rubrics[r.name]!.version) }

        let page = HTMLReport.render(input)
        #expect(ReportFixtures.xmlError(page) == nil)
        for s in HTMLReport.sections { #expect(ReportFixtures.section(page, s.id) != nil, "\(s.id)") }
        let svgs = ReportFixtures.svgElements(page)
        #expect(svgs.count >= 4 + 12 + 3)
        for svg in svgs { #expect(ReportFixtures.xmlError(svg) == nil) }
        #expect(!page.contains("<script>") && page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && page.contains("&quot;quotes&quot;"))
        #expect(!page.contains("Simulated data."))
        #expect(MarkdownReport.render(input).contains("| medical | 0 |"))

        do {
            let r = try CLI.run(["report", e.output.path, "--note", "a <note>"])
            #expect(r.status == 0, "\(r.err)")
            let url = e.output.appendingPathComponent("report.html")
            #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == url.path)
            let written = try String(contentsOf: url, encoding: .utf8)
            #expect(written.contains("a &lt;note&gt;") && ReportFixtures.xmlError(written) == nil)
        }
    }

    @Test func aFolderWithoutAStoreSaysWhatToDo() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: ReportError.self) { try ReportInput.load(runDirectory: dir) }
        do { _ = try ReportInput.load(runDirectory: dir) } catch {
            #expect(error.description.contains(dir.path) && error.description.contains("misalign run"))
        }
    }
}
