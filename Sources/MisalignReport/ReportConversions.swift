import Foundation
import MisalignChangePoint
import MisalignKernels

extension SignalOnsets {
    /// From the change-point layer's onsets for one signal.
    public init(_ s: SignalOnset) {
        self.init(signal: s.signal, direction: s.direction.rawValue,
                  methods: s.methods.map { MethodOnsetEntry(method: $0.method, step: $0.step, index: $0.index) },
                  consensusStep: s.consensusStep, interval: s.interval.map(Interval.init))
    }
}

extension Interval {
    public init(_ b: BootstrapInterval) { self.init(low: b.low, high: b.high, definedFraction: b.definedFraction) }
}

extension RunReport {
    /// A run from its onset analysis and its curves (`SeriesBands.series`). A report without a
    /// dataset name is filed under "run".
    public init(_ report: OnsetReport, series: [SignalSeries]) {
        self.init(dataset: report.dataset ?? "run", seed: report.seed, series: series,
                  onsets: report.signals.map(SignalOnsets.init),
                  lag: LagEstimate(steps: report.lagSteps, interval: report.lagInterval.map(Interval.init),
                                   probabilityPositive: report.probabilityLagPositive))
    }
}

/// Per-checkpoint means with bootstrap bands, from the same per-question tables the onset
/// bootstrap uses: questions are resampled with replacement (answers to one question are
/// correlated), and each checkpoint's band is the percentile interval of the resampled means.
public enum SeriesBands {
    /// One signal's curve with `confidence` bands from `resamples` cluster resamples
    /// (0: no bands). Resample `b` draws from `SplitMix64(seed: seed, stream: b)`.
    public static func series(_ table: CheckpointTable, direction: Direction, resamples: Int = 1000,
                              confidence: Double = 0.95, seed: UInt64 = 0xBA4D) -> SignalSeries {
        let nq = table.questions.count, nc = table.steps.count
        let mean = table.curve(weights: [Double](repeating: 1, count: nq))
        var answers = [Int](repeating: 0, count: nc)
        for q in 0..<nq { for c in 0..<nc { answers[c] += Int(table.counts[q * nc + c]) } }
        var draws = [[Double]](repeating: [], count: nc)
        if resamples > 0 && nq > 0 {
            for b in 0..<resamples {
                var rng = SplitMix64(seed: seed, stream: UInt64(b))
                var w = [Double](repeating: 0, count: nq)
                for _ in 0..<nq { w[rng.below(nq)] += 1 }
                let curve = table.curve(weights: w)
                for c in 0..<nc { draws[c].append(curve[c]) }
            }
        }
        let alpha = (1 - confidence) / 2
        let points = (0..<nc).map { c -> SeriesPoint in
            guard !draws[c].isEmpty else { return SeriesPoint(step: table.steps[c], mean: mean[c], answers: answers[c]) }
            let s = draws[c].sorted()
            return SeriesPoint(step: table.steps[c], mean: mean[c], low: percentile(s, alpha), high: percentile(s, 1 - alpha),
                               answers: answers[c])
        }
        return SignalSeries(signal: table.signal, direction: direction.rawValue, points: points)
    }

    /// Curves of every signal in `config` for each (dataset, seed) group of `records`, keyed like
    /// `OnsetAnalysis.analyze(records:)`'s reports.
    public static func series(records: [ScoreRecord], signals: [SignalSpec], dataset: String?, seed: Int?,
                              resamples: Int = 1000, confidence: Double = 0.95) throws(ChangePointError) -> [SignalSeries] {
        let mine = records.filter { $0.dataset == dataset && $0.seed == seed }
        let questions = Array(Set(mine.map(\.questionID))).sorted()
        var out: [SignalSeries] = []
        for spec in signals {
            let recs = mine.filter { $0.signal == spec.name }
            if recs.isEmpty { continue }
            let table = try CheckpointTable(signal: spec.name, records: recs, questions: questions)
            out.append(series(table, direction: spec.direction, resamples: resamples, confidence: confidence))
        }
        return out
    }

    /// Linear-interpolation percentile of sorted values (numpy's default).
    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        let pos = p * Double(sorted.count - 1)
        let lo = Int(pos.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }
}
