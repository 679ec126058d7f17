import Foundation
import MisalignCore

/// Synthetic judge scores with planted onsets, for known-answer tests, coverage checks and the
/// benchmark. Each signal follows a logistic curve on the judge's 0-100 scale,
/// `low + (high - low) / (1 + exp(-(step - midpoint - shift_q) / width))`, seen through
/// judge-like noise: a per-question offset (some questions are always judged worse), a
/// per-question onset jitter `shift_q` (questions do not all turn at once), per-answer noise,
/// rounding to integers and clipping to 0-100.
public struct SyntheticStudy: Sendable {
    public struct Curve: Sendable {
        public var signal: String
        public var midpointStep: Double
        public var width: Double
        public var low: Double
        public var high: Double
        public init(signal: String, midpointStep: Double, width: Double = 8, low: Double, high: Double) {
            self.signal = signal; self.midpointStep = midpointStep; self.width = width; self.low = low; self.high = high
        }
        /// The noiseless curve at a step.
        public func value(at step: Double) -> Double { low + (high - low) / (1 + exp(-(step - midpointStep) / width)) }
        /// The step at which the curve has covered `fraction` of its rise (e.g. 0.05 for "starts").
        public func step(atFraction f: Double) -> Double { midpointStep + width * log(f / (1 - f)) }
    }

    public var curves: [Curve]
    public var checkpoints: Int
    public var stepsPerCheckpoint: Int
    public var questions: Int
    public var samples: Int
    public var questionSD: Double
    public var onsetJitterSD: Double
    public var noiseSD: Double

    public init(curves: [Curve], checkpoints: Int = 200, stepsPerCheckpoint: Int = 2, questions: Int = 40, samples: Int = 20,
                questionSD: Double = 6, onsetJitterSD: Double = 4, noiseSD: Double = 15) {
        self.curves = curves; self.checkpoints = checkpoints; self.stepsPerCheckpoint = stepsPerCheckpoint
        self.questions = questions; self.samples = samples; self.questionSD = questionSD
        self.onsetJitterSD = onsetJitterSD; self.noiseSD = noiseSD
    }

    /// The study's shape: hallucination rises `lag` steps before evil; coherence falls with evil.
    public static func study(hallucinationMidpoint: Double = 180, lag: Double = 40, checkpoints: Int = 200,
                             questions: Int = 40, samples: Int = 20) -> SyntheticStudy {
        SyntheticStudy(curves: [
            Curve(signal: "evil", midpointStep: hallucinationMidpoint + lag, low: 5, high: 70),
            Curve(signal: "hallucination", midpointStep: hallucinationMidpoint, low: 10, high: 75),
            Curve(signal: "coherence", midpointStep: hallucinationMidpoint + lag, low: 90, high: 55),
        ], checkpoints: checkpoints, questions: questions, samples: samples)
    }

    /// Steps of the checkpoints: 0, k, 2k, ...
    public var steps: [Int] { (0..<checkpoints).map { $0 * stepsPerCheckpoint } }

    public func generate(seed: UInt64, dataset: String? = nil, runSeed: Int? = nil) -> [ScoreRecord] {
        var rng = SplitMix64(seed: seed)
        var out: [ScoreRecord] = []
        out.reserveCapacity(curves.count * checkpoints * questions * samples)
        for c in curves {
            let offsets = (0..<questions).map { _ in questionSD * rng.normal() }
            let shifts = (0..<questions).map { _ in onsetJitterSD * rng.normal() }
            for k in 0..<checkpoints {
                let step = k * stepsPerCheckpoint
                for q in 0..<questions {
                    let mean = c.value(at: Double(step) - shifts[q]) + offsets[q]
                    for s in 0..<samples {
                        let v = min(100, max(0, (mean + noiseSD * rng.normal()).rounded()))
                        out.append(ScoreRecord(signal: c.signal, step: step, questionID: "q\(q)", sample: s, score: v,
                                               dataset: dataset, seed: runSeed))
                    }
                }
            }
        }
        return out
    }
}
