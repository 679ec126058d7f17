// Example: add your own change-point method and run it beside the built-in onset rules.
//
// `TTestSplit` is a `ChangePointDetector`: it tries every split of the series into "before"
// and "after" and keeps the one with the largest Welch t statistic (a two-sample t-test for a
// shift in the mean). `TTestOnsetRule` turns it into an `OnsetRule` (onset = the split, if the
// shift goes the bad way and t is large enough), so `OnsetAnalysis` can put it in the
// consensus and bootstrap it like the built-in rules.
//
//   swift run -c release CustomDetector            # simulated study, seed 1
//   swift run -c release CustomDetector 7          # another seed
import Foundation
import MisalignCore
import MisalignTesting  // SyntheticStudy: a simulated study to run the detector on

/// The split that maximises Welch's t between the two sides (each at least `minSize` long).
struct TTestSplit: ChangePointDetector {
    var minSize = 3
    /// Below this |t| there is no change point.
    var minT = 4.0

    /// Welch's t for a split of `x` at `k`, and the mean shift (after - before).
    func t(_ x: [Double], at k: Int) -> (t: Double, shift: Double) {
        func stats(_ s: ArraySlice<Double>) -> (mean: Double, variance: Double) {
            let m = s.reduce(0, +) / Double(s.count)
            return (m, s.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(max(1, s.count - 1)))
        }
        let a = stats(x[..<k]), b = stats(x[k...])
        let se = (a.variance / Double(k) + b.variance / Double(x.count - k)).squareRoot()
        let shift = b.mean - a.mean
        // Zero variance on both sides: any shift is infinitely significant.
        let t = se > 0 ? shift / se : (shift == 0 ? 0 : (shift > 0 ? Double.infinity : -Double.infinity))
        return (t, shift)
    }

    func detect(_ series: [Double], name: String) throws(ChangePointError) -> Segmentation {
        guard series.count >= 2 * minSize else {
            throw .tooShort(series: name, count: series.count, needed: 2 * minSize, method: "ttest")
        }
        var best: (k: Int, t: Double)? = nil
        for k in minSize...(series.count - minSize) {
            let t = abs(t(series, at: k).t)
            if t >= minT, t > (best?.t ?? 0) { best = (k, t) }
        }
        // Segmentation computes segment means and costs for us; we only give breakpoints.
        return try Segmentation(breakpoints: (best.map { [$0.k] } ?? []) + [series.count], series: series)
    }
}

/// The detector as an onset rule: the split counts as an onset when the series moves in the
/// direction in which it goes wrong.
struct TTestOnsetRule: OnsetRule {
    var detector = TTestSplit()
    var name: String { "ttest" }
    func onset(_ x: [Double], direction: Direction, series: String) throws(ChangePointError) -> Int? {
        guard let cp = try detector.detect(x, name: series).changePoints.first else { return nil }
        return (direction == .up ? cp.meanShift > 0 : cp.meanShift < 0) ? cp.index : nil
    }
}

let seed = CommandLine.arguments.count > 1 ? UInt64(CommandLine.arguments[1]) ?? 1 : 1
// A small simulated study: 60 checkpoints 2 steps apart, 12 questions x 4 samples per
// checkpoint; hallucination starts rising 20 steps before evil.
let study = SyntheticStudy.study(hallucinationMidpoint: 60, lag: 20, checkpoints: 60, questions: 12, samples: 4)
let records = study.generate(seed: seed)
do {
    // 1. The detector alone on the mean evil curve, next to PELT.
    let evil = try CheckpointTable(signal: "evil", records: records.filter { $0.signal == "evil" },
                                   questions: Array(Set(records.map(\.questionID))).sorted())
    let curve = evil.curve(weights: Array(repeating: 1, count: evil.questions.count))
    let mine = try TTestSplit().detect(curve, name: "evil")
    let pelt = try Pelt(model: .l2, penalty: Penalty.bic(curve, model: .l2), minSize: 2, jump: 1).detect(curve, name: "evil")
    print("evil mean curve, \(curve.count) checkpoints")
    print("  ttest breakpoints: \(mine.breakpoints)")
    print("  pelt  breakpoints: \(pelt.breakpoints)")

    // 2. The rule in the consensus, beside the built-in ones, with a 200-resample bootstrap.
    let config = OnsetConfig(rules: OnsetConfig.defaultRules() + [TTestOnsetRule()], resamples: 200, seed: seed)
    let report = try OnsetAnalysis.analyze(records: records, config: config)[0]
    print("\nonsets in optimizer steps (planted: where the noiseless curve has covered 5% of its rise)")
    print("signal          planted  " + config.rules.map { $0.name.padding(toLength: 10, withPad: " ", startingAt: 0) }.joined() + "consensus")
    for s in report.signals {
        let planted = study.curves.first { $0.signal == s.signal }!.step(atFraction: 0.05)
        var line = s.signal.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: "%-9.0f", planted)
        for m in s.methods { line += (m.step.map(String.init) ?? "-").padding(toLength: 10, withPad: " ", startingAt: 0) }
        print(line + (s.consensusStep.map { String(format: "%.1f", $0) } ?? "none"))
    }
    if let lag = report.lagSteps, let iv = report.lagInterval {
        print(String(format: "\nlag evil - hallucination: %.1f steps, 95%% CI [%.1f, %.1f]", lag, iv.low, iv.high))
    } else {
        print("\nlag evil - hallucination: undefined (an onset is missing)")
    }
} catch {
    print("error: \(error)")
    exit(1)
}
