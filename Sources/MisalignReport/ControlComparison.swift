import Foundation
import MisalignJudge
import MisalignPipeline

/// One dataset level against its matched control (`datasets: {GROUP: {LEVEL: FILE, ..., control:
/// LEVEL}}`), for one seed: per signal and per checkpoint step both runs reached, the level's
/// mean, the control's, their difference (level - control) and its interval.
///
/// The interval is the normal approximation for a difference of two independent means:
/// `d ± z·sqrt(se_level² + se_control²)`, where each mean's standard error is recovered from
/// its stored interval (`mean ± z·sd/√n`, so `se = (high - low) / 2z`) and z is the report's
/// confidence quantile. The two runs' answers come from different models, so the means are
/// independent; like the per-checkpoint intervals it treats answers as independent, so it is
/// narrower than a bootstrap over questions would be when questions differ systematically.
/// Steps where either side has no interval (fewer than 2 scores) get a difference and no interval.
public struct ControlComparison: Codable, Sendable, Equatable {
    public struct Point: Codable, Sendable, Equatable {
        public var step: Int
        public var level: Double
        public var control: Double
        /// level - control
        public var difference: Double
        public var low: Double?
        public var high: Double?
        public init(step: Int, level: Double, control: Double, difference: Double, low: Double?, high: Double?) {
            self.step = step; self.level = level; self.control = control; self.difference = difference
            self.low = low; self.high = high
        }
    }
    public struct Signal: Codable, Sendable, Equatable {
        public var signal: String
        public var direction: String
        public var points: [Point]
        public init(signal: String, direction: String, points: [Point]) { self.signal = signal; self.direction = direction; self.points = points }
    }
    /// The level's run dataset (`medical.misaligned_2`) and its control's (`medical.normal`).
    public var dataset: String
    public var control: String
    public var seed: Int?
    public var signals: [Signal]

    public init(dataset: String, control: String, seed: Int?, signals: [Signal]) {
        self.dataset = dataset; self.control = control; self.seed = seed; self.signals = signals
    }

    public var label: String { "\(dataset) - \(control)" + (seed.map { ", seed \($0)" } ?? "") }

    /// Every (level, control) pair of `controls` (level dataset -> control dataset) with runs of
    /// the same seed in `runs`, in the runs' order.
    public static func all(runs: [RunReport], controls: [String: String], confidence: Double) -> [ControlComparison] {
        guard !controls.isEmpty, confidence > 0, confidence < 1 else { return [] }
        let z = Aggregation.normalQuantile(0.5 + confidence / 2)
        return runs.compactMap { run in
            guard let c = controls[run.dataset], let base = runs.first(where: { $0.dataset == c && $0.seed == run.seed }) else { return nil }
            return compare(run, base, z: z)
        }
    }

    static func compare(_ level: RunReport, _ control: RunReport, z: Double) -> ControlComparison {
        let signals = level.series.compactMap { s -> Signal? in
            guard let c = control.series(s.signal) else { return nil }
            let byStep = Dictionary(c.points.map { ($0.step, $0) }, uniquingKeysWith: { a, _ in a })
            let points = s.points.compactMap { p -> Point? in
                guard let q = byStep[p.step], p.mean.isFinite, q.mean.isFinite else { return nil }
                let d = p.mean - q.mean
                guard let a = se(p, z), let b = se(q, z) else { return Point(step: p.step, level: p.mean, control: q.mean, difference: d, low: nil, high: nil) }
                let half = z * (a * a + b * b).squareRoot()
                return Point(step: p.step, level: p.mean, control: q.mean, difference: d, low: d - half, high: d + half)
            }
            return Signal(signal: s.signal, direction: s.direction, points: points)
        }
        return ControlComparison(dataset: level.dataset, control: control.dataset, seed: level.seed, signals: signals)
    }

    /// The standard error behind a stored normal-approximation interval.
    static func se(_ p: SeriesPoint, _ z: Double) -> Double? {
        guard let l = p.low, let h = p.high, l.isFinite, h.isFinite, z > 0 else { return nil }
        return (h - l) / (2 * z)
    }
}
