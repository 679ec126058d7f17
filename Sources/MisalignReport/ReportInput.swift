import Foundation

/// Everything the HTML and Markdown reports show, as plain values. The pipeline's run store
/// fills one from a finished run; `ReportDemo` fills one from simulated scores; a saved
/// `report.json` (`ReportInput.load(jsonAt:)`) round-trips it, so a report can be rendered
/// with no run at hand. Steps are optimizer steps; scores are on the judges' 0-100 scale.
/// Non-finite numbers are allowed anywhere a measurement goes (they render as gaps or "-").
public struct ReportInput: Codable, Sendable, Equatable {
    /// Version of this JSON layout; `load` refuses a newer one.
    public static let currentFormat = 1
    public var format: Int = ReportInput.currentFormat
    /// Page title, e.g. "Emergent misalignment during LoRA fine-tuning".
    public var title: String
    /// The run's name (its folder), shown under the title.
    public var runName: String?
    /// When true the page says, at the top and in every section that shows scores, that the
    /// numbers come from a simulation rather than a fine-tuning run.
    public var simulated: Bool
    /// Free-text notes shown in the overview (what is real and what is a stand-in).
    public var notes: [String]
    /// Confidence level of every interval (e.g. 0.95) and the bootstrap's resample count.
    public var confidence: Double
    public var resamples: Int
    /// The signal whose onset comes first in the study's claim, and the one that follows:
    /// the lag is `onset(lagSignal) - onset(leadSignal)`.
    public var leadSignal: String
    public var lagSignal: String
    /// One entry per fine-tuning run (dataset and seed).
    public var runs: [RunReport]
    /// Across-seed summary per dataset; also the dataset comparison (any number of datasets).
    public var datasets: [DatasetSummary]
    /// Pairwise judge agreement.
    public var agreement: [JudgeAgreement]
    /// Loss and learning rate per optimizer step, one entry per run.
    public var training: [TrainingCurve]
    /// Answers shown verbatim (escaped) at chosen checkpoints.
    public var samples: [SampleAnswer]
    public var reproducibility: Reproducibility
    /// Each dataset level against its matched control (absent in inputs saved before levels).
    public var controls: [ControlComparison]?
    /// Each run's adapter dynamics (absent when the run has none: no adapters, or inputs saved before them).
    public var adapterDynamics: [AdapterDynamicsRun]?
    /// Each run's trait-vector projection signals (absent when the run records none).
    public var activationSignals: [ActivationSignalsRun]?
    /// Each judge's calibration per trait (absent when the run records none).
    public var calibration: [JudgeCalibrationEntry]?
    /// The judges whose scores make `runs`' curves (the detection judge; every judge for
    /// `mean`); nil: every judge. A curve is marked when one of them failed calibration on it.
    public var curveJudges: [String]?

    public init(title: String, runName: String? = nil, simulated: Bool = false, notes: [String] = [],
                confidence: Double = 0.95, resamples: Int = 0, leadSignal: String = "hallucination", lagSignal: String = "evil",
                runs: [RunReport] = [], datasets: [DatasetSummary] = [], agreement: [JudgeAgreement] = [],
                training: [TrainingCurve] = [], samples: [SampleAnswer] = [], reproducibility: Reproducibility = Reproducibility()) {
        self.title = title; self.runName = runName; self.simulated = simulated; self.notes = notes
        self.confidence = confidence; self.resamples = resamples; self.leadSignal = leadSignal; self.lagSignal = lagSignal
        self.runs = runs; self.datasets = datasets; self.agreement = agreement; self.training = training
        self.samples = samples; self.reproducibility = reproducibility
    }
}

/// A percentile interval, with the share of bootstrap resamples in which the quantity existed
/// (an onset can be missing in some resamples).
public struct Interval: Codable, Sendable, Equatable {
    public var low: Double
    public var high: Double
    public var definedFraction: Double?
    public init(low: Double, high: Double, definedFraction: Double? = nil) {
        self.low = low; self.high = high; self.definedFraction = definedFraction
    }
}

/// One checkpoint of one signal: the mean score over all answers, its interval, and how many
/// answers were scored.
public struct SeriesPoint: Codable, Sendable, Equatable {
    public var step: Int
    public var mean: Double
    public var low: Double?
    public var high: Double?
    public var answers: Int
    public init(step: Int, mean: Double, low: Double? = nil, high: Double? = nil, answers: Int = 0) {
        self.step = step; self.mean = mean; self.low = low; self.high = high; self.answers = answers
    }
}

/// One signal's curve over the run's checkpoints. `direction` is `up` when higher is worse
/// (evil, hallucination) and `down` when lower is worse (coherence).
public struct SignalSeries: Codable, Sendable, Equatable {
    public var signal: String
    public var direction: String
    public var points: [SeriesPoint]
    public init(signal: String, direction: String, points: [SeriesPoint]) {
        self.signal = signal; self.direction = direction; self.points = points
    }
}

/// One detection method's onset for one signal (nil step: the method found none).
public struct MethodOnsetEntry: Codable, Sendable, Equatable {
    public var method: String
    public var step: Int?
    /// Checkpoint index (0-based), when known.
    public var index: Int?
    /// Bootstrap interval of this method's onset, when one was computed.
    public var interval: Interval?
    public init(method: String, step: Int?, index: Int? = nil, interval: Interval? = nil) {
        self.method = method; self.step = step; self.index = index; self.interval = interval
    }
}

/// Every method's onset for one signal and their consensus (the median of the methods'
/// steps, nil when too few methods found an onset).
public struct SignalOnsets: Codable, Sendable, Equatable {
    public var signal: String
    public var direction: String
    public var methods: [MethodOnsetEntry]
    public var consensusStep: Double?
    public var interval: Interval?
    public init(signal: String, direction: String, methods: [MethodOnsetEntry], consensusStep: Double?, interval: Interval? = nil) {
        self.signal = signal; self.direction = direction; self.methods = methods
        self.consensusStep = consensusStep; self.interval = interval
    }
}

/// `onset(lag signal) - onset(lead signal)` in optimizer steps, positive when the lead signal
/// goes wrong first.
public struct LagEstimate: Codable, Sendable, Equatable {
    public var steps: Double?
    public var interval: Interval?
    /// Share of resamples (with both onsets defined) in which the lag was positive.
    public var probabilityPositive: Double?
    public init(steps: Double?, interval: Interval? = nil, probabilityPositive: Double? = nil) {
        self.steps = steps; self.interval = interval; self.probabilityPositive = probabilityPositive
    }
}

/// One fine-tuning run: its curves, onsets and lag.
public struct RunReport: Codable, Sendable, Equatable {
    public var dataset: String
    public var seed: Int?
    public var series: [SignalSeries]
    public var onsets: [SignalOnsets]
    public var lag: LagEstimate
    /// With two or more judges: each judge's curves, and `mean` (the per-answer mean of the
    /// judges) as its own, for the judges figure; nil or empty with one judge.
    public var byJudge: [JudgeCurves]?
    public init(dataset: String, seed: Int?, series: [SignalSeries], onsets: [SignalOnsets], lag: LagEstimate, byJudge: [JudgeCurves]? = nil) {
        self.dataset = dataset; self.seed = seed; self.series = series; self.onsets = onsets; self.lag = lag; self.byJudge = byJudge
    }
    /// "medical, seed 11"
    public var label: String { dataset + (seed.map { ", seed \($0)" } ?? "") }
    public func series(_ signal: String) -> SignalSeries? { series.first { $0.signal == signal } }
    public func onset(_ signal: String) -> SignalOnsets? { onsets.first { $0.signal == signal } }
}

/// One judge's per-checkpoint curves in one run (`judge` is `mean` for the judges combined).
public struct JudgeCurves: Codable, Sendable, Equatable {
    public var judge: String
    public var series: [SignalSeries]
    public init(judge: String, series: [SignalSeries]) { self.judge = judge; self.series = series }
}
