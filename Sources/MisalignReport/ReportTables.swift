import Foundation
import MisalignChangePoint
import MisalignIO
import MisalignJudge

/// Across-seed summary of one dataset: the `DatasetRow`/`SeedSummary` of `compareDatasets`
/// as a plain, encodable value. Rows of several datasets make the dataset comparison.
public struct DatasetSummary: Codable, Sendable, Equatable {
    public struct SeedLag: Codable, Sendable, Equatable {
        public var seed: Int?
        public var lag: Double?
        public init(seed: Int?, lag: Double?) { self.seed = seed; self.lag = lag }
    }
    public struct SignalStep: Codable, Sendable, Equatable {
        public var signal: String
        public var step: Double
        public init(signal: String, step: Double) { self.signal = signal; self.step = step }
    }
    public var dataset: String
    public var runs: Int
    /// Median across runs of each signal's consensus onset (steps), signals in a fixed order.
    public var medianOnsets: [SignalStep]
    public var lags: [SeedLag]
    public var medianLag: Double?
    /// Seeds with a positive and a negative lag, and the exact two-sided sign test's p.
    public var positive: Int
    public var negative: Int
    public var signTestP: Double?
    /// Mean over runs of P(lag > 0) from each run's bootstrap.
    public var meanProbabilityLagPositive: Double?

    public init(dataset: String, runs: Int, medianOnsets: [SignalStep], lags: [SeedLag], medianLag: Double?,
                positive: Int, negative: Int, signTestP: Double?, meanProbabilityLagPositive: Double?) {
        self.dataset = dataset; self.runs = runs; self.medianOnsets = medianOnsets; self.lags = lags
        self.medianLag = medianLag; self.positive = positive; self.negative = negative
        self.signTestP = signTestP; self.meanProbabilityLagPositive = meanProbabilityLagPositive
    }

    /// From the change-point layer's row (`compareDatasets`).
    public init(_ row: DatasetRow) {
        self.init(dataset: row.dataset, runs: row.runs,
                  medianOnsets: row.medianOnsets.sorted { $0.key < $1.key }.map { SignalStep(signal: $0.key, step: $0.value) },
                  lags: row.seeds.lags.map { SeedLag(seed: $0.seed, lag: $0.lag) }, medianLag: row.seeds.medianLag,
                  positive: row.seeds.positive, negative: row.seeds.negative, signTestP: row.seeds.signTestP,
                  meanProbabilityLagPositive: row.meanProbabilityLagPositive)
    }

    public func medianOnset(_ signal: String) -> Double? { medianOnsets.first { $0.signal == signal }?.step }
}

/// Agreement between two judges on one trait (`AgreementRow` as a plain, encodable value).
public struct JudgeAgreement: Codable, Sendable, Equatable {
    public var trait: String
    public var judgeA: String
    public var judgeB: String
    /// Answers both judges scored.
    public var n: Int
    public var pearson: Double?
    public var spearman: Double?
    public var meanAbsoluteDifference: Double?
    /// Share of answers whose two scores differ by 20 points or more.
    public var shareDifferingBy20: Double?
    public var krippendorffAlpha: Double?
    public var cohenKappa: Double?

    public init(trait: String, judgeA: String, judgeB: String, n: Int, pearson: Double? = nil, spearman: Double? = nil,
                meanAbsoluteDifference: Double? = nil, shareDifferingBy20: Double? = nil,
                krippendorffAlpha: Double? = nil, cohenKappa: Double? = nil) {
        self.trait = trait; self.judgeA = judgeA; self.judgeB = judgeB; self.n = n; self.pearson = pearson
        self.spearman = spearman; self.meanAbsoluteDifference = meanAbsoluteDifference
        self.shareDifferingBy20 = shareDifferingBy20; self.krippendorffAlpha = krippendorffAlpha; self.cohenKappa = cohenKappa
    }

    /// From the judge layer's row (`JudgeReport.agreement`).
    public init(_ row: AgreementRow) {
        let s = row.stats
        self.init(trait: row.trait, judgeA: row.judgeA, judgeB: row.judgeB, n: s.n, pearson: s.pearson, spearman: s.spearman,
                  meanAbsoluteDifference: s.meanAbsoluteDifference, shareDifferingBy20: s.shareDifferingBy20,
                  krippendorffAlpha: s.krippendorffAlpha, cohenKappa: s.cohenKappa)
    }
}

/// Training loss and learning rate per optimizer step of one run (from its `metrics.jsonl`).
public struct TrainingCurve: Codable, Sendable, Equatable {
    public struct Point: Codable, Sendable, Equatable {
        public var step: Int
        public var loss: Double
        public var lr: Double
        /// The held-out loss of the checkpoint at this step (`training.holdout`), when one was evaluated.
        public var heldOutLoss: Double?
        public init(step: Int, loss: Double, lr: Double, heldOutLoss: Double? = nil) {
            self.step = step; self.loss = loss; self.lr = lr; self.heldOutLoss = heldOutLoss
        }
    }
    public var dataset: String
    public var seed: Int?
    public var points: [Point]
    public init(dataset: String, seed: Int?, points: [Point]) { self.dataset = dataset; self.seed = seed; self.points = points }

    /// Reads a run's `metrics.jsonl` (`StepMetrics.jsonLine`: `step`, `loss`, `lr`, ...). Blank
    /// lines are skipped; errors name the file, line and field.
    public static func parseMetrics(_ text: String, file: String, dataset: String, seed: Int?) throws(ReportError) -> TrainingCurve {
        var points: [Point] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            let v: JSONValue
            do { v = try JSONValue.parse(String(t)) } catch {
                throw .invalidMetrics(file: file, line: i + 1, reason: "not valid JSON (\(error))")
            }
            guard let step = v["step"]?.intValue else { throw .invalidMetrics(file: file, line: i + 1, reason: "missing integer 'step'") }
            guard let loss = v["loss"]?.doubleValue else { throw .invalidMetrics(file: file, line: i + 1, reason: "missing number 'loss'") }
            guard let lr = v["lr"]?.doubleValue else { throw .invalidMetrics(file: file, line: i + 1, reason: "missing number 'lr'") }
            points.append(Point(step: step, loss: loss, lr: lr, heldOutLoss: v["heldout_loss"]?.doubleValue))
        }
        return TrainingCurve(dataset: dataset, seed: seed, points: points)
    }
}

/// One generated answer shown in the report, with its judges' scores.
public struct SampleAnswer: Codable, Sendable, Equatable {
    public struct Score: Codable, Sendable, Equatable {
        public var signal: String
        /// nil: the judge gave no score (refusal, no numeric mass, error).
        public var score: Double?
        public var judge: String?
        public init(signal: String, score: Double?, judge: String? = nil) { self.signal = signal; self.score = score; self.judge = judge }
    }
    public var dataset: String
    public var seed: Int?
    public var step: Int
    public var questionID: String
    public var question: String
    public var answer: String
    public var scores: [Score]
    public init(dataset: String, seed: Int?, step: Int, questionID: String, question: String, answer: String, scores: [Score]) {
        self.dataset = dataset; self.seed = seed; self.step = step; self.questionID = questionID
        self.question = question; self.answer = answer; self.scores = scores
    }
}

/// What is needed to rerun the study exactly: the config file's text, tool versions and the
/// SHA-256 of every rubric (results depend on the exact rubric wording).
public struct Reproducibility: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) { self.name = name; self.value = value }
    }
    public struct RubricHash: Codable, Sendable, Equatable {
        public var name: String
        public var version: Int
        public var sha256: String
        public init(name: String, version: Int, sha256: String) { self.name = name; self.version = version; self.sha256 = sha256 }
        public init(_ r: Rubric) { self.init(name: r.name, version: r.version, sha256: r.sha256) }
    }
    /// The config exactly as written (shown verbatim) and where it came from.
    public var configText: String
    public var configSource: String?
    /// e.g. misalign 0.1.0, base model, judges.
    public var versions: [Entry]
    public var rubrics: [RubricHash]
    public init(configText: String = "", configSource: String? = nil, versions: [Entry] = [], rubrics: [RubricHash] = []) {
        self.configText = configText; self.configSource = configSource; self.versions = versions; self.rubrics = rubrics
    }
}
