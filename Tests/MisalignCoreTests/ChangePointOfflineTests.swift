import Testing
import Foundation
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

/// Offline searches beyond ruptures parity: exactness against brute force, input checks,
/// penalty helpers.
@Suite struct ChangePointOfflineTests {
    /// Optimal partitioning without any pruning (Jackson et al. 2005): the reference PELT must
    /// equal, in objective value.
    static func bruteForceOptimum(_ x: [Double], model: CostModel, pen: Double, minSize: Int, jump: Int) -> Double {
        let c = AnyCost(model, x)
        let n = x.count
        var f = [Double](repeating: .infinity, count: n + 1)
        f[0] = 0
        var ends = stride(from: 0, to: n, by: jump).filter { $0 >= minSize }
        ends.append(n)
        for s in ends {
            for t in [0] + ends where t < s && s - t >= minSize && f[t].isFinite {
                f[s] = min(f[s], f[t] + c.cost(t, s) + pen)
            }
        }
        return f[n] - pen   // ruptures' F counts a penalty per segment; report per change point
    }

    @Test(arguments: CostModel.allCases)
    func peltIsExactAgainstUnprunedOptimalPartitioning(model: CostModel) throws {
        var rng = SplitMix64(seed: 99)
        for trial in 0..<40 {
            let n = 30 + trial
            let x = (0..<n).map { i in (i % 17 < 8 ? 0.0 : 2.0) + (i % 23 < 5 ? 3 : 0) + rng.normal() * (i % 13 < 6 ? 0.5 : 1.5) }
            let minSize = [1, 2, 3, 5][trial % 4], jump = [1, 1, 2, 3][trial / 10]
            for pen in [0.5, 3.0, 12.0] {
                let seg = try Pelt(model: model, penalty: pen, minSize: minSize, jump: jump).detect(x)
                let best = Self.bruteForceOptimum(x, model: model, pen: pen, minSize: max(minSize, model.minSize), jump: jump)
                #expect(abs(seg.penalisedCost! - best) <= 1e-8 * max(1, abs(best)), "n=\(n) min_size=\(minSize) jump=\(jump) pen=\(pen)")
            }
        }
    }

    @Test func segmentationReportsMeansCostsAndChangePoints() throws {
        let x = [0.0, 0, 0, 0, 5, 5, 5, 5, 5]
        let s = try Pelt(model: .l2, penalty: 1).detect(x)
        #expect(s.breakpoints == [4, 9])
        #expect(s.changePoints.count == 1)
        let cp = s.changePoints[0]
        #expect(cp.index == 4 && cp.before.mean == 0 && cp.after.mean == 5 && cp.meanShift == 5)
        #expect(abs(cp.before.cost) < 1e-12 && abs(cp.after.cost) < 1e-12)
    }

    @Test func rejectsNonFiniteValuesNamingTheSeriesAndIndex() {
        let x = [1.0, 2, .nan, 4, 5]
        #expect(throws: ChangePointError.nonFinite(series: "evil", index: 2)) {
            try Pelt(penalty: 1).detect(x, name: "evil")
        }
        #expect(throws: ChangePointError.nonFinite(series: "evil", index: 1)) {
            try ThresholdRule().onset([1, .infinity, 3], direction: .up, series: "evil")
        }
    }

    @Test func tooShortSeriesAreTypedErrors() {
        #expect(throws: ChangePointError.self) { try Dynp(nBkps: 3, minSize: 2).detect([1, 2, 3, 4, 5]) }
        #expect(throws: ChangePointError.self) { try Pelt(penalty: 1).detect([]) }
        #expect(throws: ChangePointError.self) { try BaselineZRule(baseline: 5).onset([1, 2, 3], direction: .up, series: "s") }
        do {
            _ = try BinarySegmentation(model: .l2, rule: .count(2), minSize: 3).detect([1, 2, 3, 4, 5, 6, 7, 8], name: "h")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("series 'h'"))
        }
    }

    @Test func constantSeriesGiveNoChangeOrATypedError() throws {
        let x = [Double](repeating: 3, count: 20)
        let s = try Pelt(model: .normal, penalty: 0).detect(x)
        #expect(s.breakpoints == [20] && s.noChangeReason == .constantSeries)
        let b = try BottomUp(rule: .penalty(1)).detect(x)
        #expect(b.breakpoints == [20] && b.noChangeReason == .constantSeries)
        #expect(throws: ChangePointError.constantSeries(series: "c", value: 3)) { try Dynp(nBkps: 1).detect(x, name: "c") }
        // An onset rule on a constant series finds no onset rather than dividing by zero.
        #expect(try MeanShiftRule().onset(x, direction: .up, series: "c") == nil)
        #expect(throws: ChangePointError.self) { try BaselineZRule(minSD: 0, robustSD: false).onset(x, direction: .up, series: "c") }
    }

    @Test func unsortedAndDuplicateStepsAreRejected() {
        let spec = SignalSpec("evil", .up), config = OnsetConfig(resamples: 0)
        let x = [Double](repeating: 1, count: 30)
        var steps = Array(stride(from: 0, to: 60, by: 2))
        steps.swapAt(3, 4)
        #expect(throws: ChangePointError.unsortedSteps(series: "evil", index: 4, previous: 8, step: 6)) {
            try OnsetAnalysis.onsets(x, steps: steps, spec: spec, config: config)
        }
        steps.swapAt(3, 4); steps[5] = steps[4]
        #expect(throws: ChangePointError.duplicateStep(series: "evil", step: 8)) {
            try OnsetAnalysis.onsets(x, steps: steps, spec: spec, config: config)
        }
    }

    @Test func invalidParametersAreRejected() {
        #expect(throws: ChangePointError.self) { try Pelt(penalty: -1).detect([1, 2, 3, 4]) }
        #expect(throws: ChangePointError.self) { try Pelt(penalty: .nan).detect([1, 2, 3, 4]) }
        #expect(throws: ChangePointError.self) { try Pelt(penalty: 1, jump: 0).detect([1, 2, 3, 4]) }
        #expect(throws: ChangePointError.self) { try ThresholdRule(consecutive: 0).onset([1, 2], direction: .up, series: "s") }
    }

    @Test func scoresParserNamesLineAndField() throws {
        let good = #"{"signal":"evil","step":2,"question_id":7,"sample":0,"score":12.5,"dataset":"medical","seed":1}"#
        let recs = try ScoreRecord.parseJSONL(good + "\n\n")
        #expect(recs == [ScoreRecord(signal: "evil", step: 2, questionID: "7", sample: 0, score: 12.5, dataset: "medical", seed: 1)])
        #expect(throws: ChangePointError.invalidInput(field: "line 2: score", reason: "missing (expected a number)")) {
            try ScoreRecord.parseJSONL(good + "\n" + #"{"signal":"evil","step":2,"question_id":"a","sample":1}"#)
        }
        #expect(throws: ChangePointError.invalidInput(field: "line 1: step", reason: "is a string (\"2\"), expected an integer (optimizer step)")) {
            try ScoreRecord.parseJSONL(#"{"signal":"evil","step":"2","question_id":"a","sample":1,"score":1}"#)
        }
    }

    @Test func robustSigmaIgnoresTheStepAndBicScalesWithIt() {
        var rng = SplitMix64(seed: 5)
        let x = (0..<2000).map { ($0 < 1000 ? 0 : 50) + 2 * rng.normal() }
        let s = Penalty.robustSigma(x)
        #expect(abs(s - 2) < 0.2)
        #expect(abs(Penalty.bic(x, model: .l2) - s * s * log(2000)) < 1e-9)
        #expect(abs(Penalty.bic(x, model: .normal) - 2 * log(2000)) < 1e-12)
    }

    @Test func penaltySweepIsMonotone() throws {
        var rng = SplitMix64(seed: 17)
        let x = (0..<300).map { Double(($0 / 60) % 3) * 2 + rng.normal() }
        let pens = Penalty.logGrid(from: 0.1, to: 1000, count: 25)
        let rows = try Penalty.sweep(x, penalties: pens)
        #expect(rows.map(\.penalty) == pens)
        // For an exact search the number of change points never grows with the penalty.
        for (a, b) in zip(rows, rows.dropFirst()) { #expect(b.changePoints <= a.changePoints) }
        #expect(rows.contains { $0.breakpoints == [60, 120, 180, 240, 300] })
        #expect(rows.last!.changePoints == 0)
    }
}
