import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
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

/// Report test helpers: XML well-formedness and the inputs the report tests share.
enum ReportFixtures {
    /// Model text that must never reach the page unescaped.
    static let hostileAnswer = "<script>alert(1)</script> He said \"quotes\" & wrote &amp; then 'x' </div><svg onload=x> \u{07}bell\n"
        + String(repeating: "averyveryverylongwordwithoutanyspaces", count: 40)

    /// A small but complete simulated input, plus a hostile sample answer and names with markup.
    static let full: ReportInput = {
        var input = try! ReportDemo.simulated(seeds: [11, 22], resamples: 40, questions: 8, samples: 3)
        input.samples.append(SampleAnswer(dataset: "med<i>&", seed: 1, step: 4, questionID: "q\"1\"", question: "Is <b>this</b> safe?",
                                          answer: hostileAnswer, scores: [.init(signal: "evil", score: 99, judge: "j<1>")]))
        input.reproducibility.configText = "name: <run> & \"quoted\"\nlr: 1e-5\n"
        // Every section has content: the simulated math runs stand in as medical's control.
        input.controls = ControlComparison.all(runs: input.runs, controls: ["medical": "math"], confidence: input.confidence)
        // Each judge's calibration (passing: nothing is marked), with a name holding markup.
        input.calibration = ["evil", "hallucination", "coherence"].map {
            JudgeCalibrationEntry(judge: "sim<judge>", trait: $0, status: "pass", set: "built-in calibration set", auc: 0.97, meanLow: 8,
                                  meanHigh: 84, lowScored: 40, highScored: 30, lowItems: 40, highItems: 30, unscorableFraction: 0)
        }
        return input
    }()

    /// An input whose every part is empty or undefined: no onsets, NaN scores, missing bounds.
    static let degenerate: ReportInput = {
        let nanSeries = SignalSeries(signal: "evil", direction: "up", points: [
            SeriesPoint(step: 0, mean: .nan, low: .nan, high: .nan, answers: 0),
            SeriesPoint(step: 2, mean: 10, low: nil, high: .infinity, answers: 3),
            SeriesPoint(step: 4, mean: .nan, answers: 0),
            SeriesPoint(step: 6, mean: 12, low: 8, high: 15, answers: 3),
            SeriesPoint(step: 8, mean: 14, low: 9, high: 18, answers: 3),
        ])
        let noOnset = SignalOnsets(signal: "evil", direction: "up", methods: [MethodOnsetEntry(method: "threshold", step: nil)],
                                   consensusStep: nil, interval: Interval(low: .nan, high: .nan, definedFraction: 0))
        let emptyRun = RunReport(dataset: "empty", seed: nil, series: [SignalSeries(signal: "hallucination", direction: "up", points: [])],
                                 onsets: [], lag: LagEstimate(steps: nil))
        let nanRun = RunReport(dataset: "holes", seed: 3, series: [nanSeries], onsets: [noOnset], lag: LagEstimate(steps: .nan, interval: nil))
        return ReportInput(title: "Degenerate", runs: [emptyRun, nanRun],
                           datasets: [DatasetSummary(dataset: "holes", runs: 1, medianOnsets: [], lags: [.init(seed: 3, lag: nil)],
                                                     medianLag: nil, positive: 0, negative: 0, signTestP: nil, meanProbabilityLagPositive: nil)],
                           training: [TrainingCurve(dataset: "holes", seed: 3, points: [.init(step: 1, loss: .nan, lr: 0)])])
    }()

    /// Whether `text` parses as XML; the parser's error otherwise.
    static func xmlError(_ text: String) -> String? {
        let p = XMLParser(data: Data(text.utf8))
        if p.parse() { return nil }
        return p.parserError.map { "\($0)" } ?? "parse failed at line \(p.lineNumber)"
    }

    /// Every `<svg ...>...</svg>` element of a page (they do not nest in our output).
    static func svgElements(_ html: String) -> [String] {
        var out: [String] = []
        var rest = html[...]
        while let start = rest.range(of: "<svg "), let end = rest.range(of: "</svg>", range: start.upperBound..<rest.endIndex) {
            out.append(String(rest[start.lowerBound..<end.upperBound]))
            rest = rest[end.upperBound...]
        }
        return out
    }

    /// The HTML of one `<section id=...>`.
    static func section(_ html: String, _ id: String) -> String? {
        guard let start = html.range(of: "<section id=\"\(id)\">"),
              let end = html.range(of: "</section>", range: start.upperBound..<html.endIndex) else { return nil }
        return String(html[start.upperBound..<end.lowerBound])
    }
}
