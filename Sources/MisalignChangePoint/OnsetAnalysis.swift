import Foundation

/// A signal to analyse and the direction in which it goes wrong.
public struct SignalSpec: Equatable, Sendable {
    public var name: String
    public var direction: Direction
    public init(_ name: String, _ direction: Direction) { self.name = name; self.direction = direction }
    /// The study's three judges: evil and hallucination rise, coherence falls.
    public static let standard = [SignalSpec("evil", .up), SignalSpec("hallucination", .up), SignalSpec("coherence", .down)]

    /// Every signal in `records`, the standard ones first in their order, then the others by
    /// name. Coherence and aligned go wrong downward, every other signal upward, unless
    /// `directions` says otherwise. No signal is required: a file of evil scores alone is analysed.
    public static func present(in records: [ScoreRecord], directions: [String: Direction] = [:]) -> [SignalSpec] {
        let names = Set(records.map(\.signal))
        let order = standard.map(\.name).filter(names.contains) + names.subtracting(standard.map(\.name)).sorted()
        return order.map { SignalSpec($0, directions[$0] ?? (["coherence", "aligned"].contains($0) ? .down : .up)) }
    }
}

/// What to run: the onset rules whose median is the consensus, which signals, and which pair
/// defines the lag (`lagSignal - leadSignal`, in optimizer steps).
public struct OnsetConfig: Sendable {
    public var rules: [any OnsetRule]
    public var signals: [SignalSpec]
    public var leadSignal: String
    public var lagSignal: String
    /// A consensus needs at least this many rules to find an onset (default: a majority with
    /// `.majority`, one with `.median`/`.medianInt`), so a single rule tripping on noise does
    /// not make an onset.
    public var minAgreeing: Int
    /// How the rules' onset steps combine into the consensus step.
    public var consensus: Consensus
    public var resamples: Int
    public var seed: UInt64
    public var confidence: Double

    public init(rules: [any OnsetRule] = OnsetConfig.defaultRules(scale: 100), signals: [SignalSpec] = SignalSpec.standard,
                leadSignal: String = "hallucination", lagSignal: String = "evil", minAgreeing: Int? = nil,
                consensus: Consensus = .majority, resamples: Int = 2000, seed: UInt64 = 0x5EED, confidence: Double = 0.95) {
        self.rules = rules; self.signals = signals; self.leadSignal = leadSignal; self.lagSignal = lagSignal
        self.consensus = consensus
        self.minAgreeing = minAgreeing ?? (consensus == .majority ? rules.count / 2 + 1 : 1)
        self.resamples = resamples; self.seed = seed; self.confidence = confidence
    }

    /// The consensus of the onset steps of the rules that fired, nil when fewer than
    /// `minAgreeing` did.
    public func consensusStep(_ found: [Double]) -> Double? {
        guard !found.isEmpty, found.count >= max(1, minAgreeing) else { return nil }
        let m = median(found)
        return consensus == .medianInt ? m.rounded(.towardZero) : m
    }

    /// The default rules for judge scores on a 0-`scale` scale: the reference study's three
    /// (threshold at half scale, moving-average rise w=3 patience 2, a mean-shift search) plus
    /// a baseline z-score, CUSUM and BOCPD, whose baseline is the first 10 checkpoints (a mean
    /// from 5 noisy checkpoints is off by half a noise sd often enough to make CUSUM drift
    /// upward long before the rise). Floors on the baseline sd (1% of scale) keep an
    /// all-zero healthy baseline from making any positive score an onset; the moving-average
    /// rule needs a total rise of 5% of scale, or judge jitter on a 40-question mean makes it
    /// fire within the first few checkpoints.
    public static func defaultRules(scale: Double = 100) -> [any OnsetRule] {
        [ThresholdRule(threshold: scale / 2, consecutive: 2),
         MovingAverageRiseRule(width: 3, patience: 2, minRise: 0.05 * scale),
         MeanShiftRule(model: .l2, minSize: 2, minShift: 0.02 * scale),
         BaselineZRule(baseline: 10, z: 3, consecutive: 2, minSD: 0.01 * scale),
         CusumRule(drift: 0.5, threshold: 5, baseline: 10, minSD: 0.01 * scale),
         BocpdRule(baseline: 10, hazardLambda: 100, window: 10, alarmProbability: 0.8, confirm: 3, minSD: 0.01 * scale)]
    }
}

/// One rule's onset for one signal.
public struct MethodOnset: Equatable, Sendable {
    public var method: String
    /// Checkpoint index (0-based) and optimizer step, nil when the rule found no onset.
    public var index: Int?
    public var step: Int?

    public init(method: String, index: Int? = nil, step: Int? = nil) {
        self.method = method
        self.index = index
        self.step = step
    }
}

/// A percentile interval from a bootstrap, with the share of resamples where it was defined.
public struct BootstrapInterval: Equatable, Sendable {
    public var low: Double
    public var high: Double
    public var definedFraction: Double

    public init(low: Double, high: Double, definedFraction: Double) {
        self.low = low
        self.high = high
        self.definedFraction = definedFraction
    }
}

/// All rules' onsets for one signal and their consensus.
public struct SignalOnset: Equatable, Sendable {
    public var signal: String
    public var direction: Direction
    public var methods: [MethodOnset]
    /// The rules' onset steps combined by `OnsetConfig.consensus` (a median), nil when fewer
    /// than `minAgreeing` found one.
    public var consensusStep: Double?
    /// Smallest and largest onset step among rules that found one.
    public var spread: (min: Int, max: Int)?
    public var interval: BootstrapInterval?

    public init(signal: String, direction: Direction, methods: [MethodOnset], consensusStep: Double? = nil, spread: (min: Int, max: Int)? = nil, interval: BootstrapInterval? = nil) {
        self.signal = signal
        self.direction = direction
        self.methods = methods
        self.consensusStep = consensusStep
        self.spread = spread
        self.interval = interval
    }

    public static func == (a: SignalOnset, b: SignalOnset) -> Bool {
        a.signal == b.signal && a.methods == b.methods && a.consensusStep == b.consensusStep
            && a.spread?.min == b.spread?.min && a.spread?.max == b.spread?.max && a.interval == b.interval
    }
}

/// The analysis of one fine-tuning run (one dataset and seed).
public struct OnsetReport: Equatable, Sendable {
    public var dataset: String?
    public var seed: Int?
    public var signals: [SignalOnset]
    /// `onset(lagSignal) - onset(leadSignal)` in optimizer steps; positive when the lead signal
    /// (hallucination) goes wrong first.
    public var lagSteps: Double?
    public var lagInterval: BootstrapInterval?
    /// Share of resamples (with both onsets defined) where the lag is positive.
    public var probabilityLagPositive: Double?
    public var resamples: Int

    public init(dataset: String?, seed: Int?, signals: [SignalOnset], lagSteps: Double?, lagInterval: BootstrapInterval?,
                probabilityLagPositive: Double?, resamples: Int) {
        self.dataset = dataset; self.seed = seed; self.signals = signals; self.lagSteps = lagSteps
        self.lagInterval = lagInterval; self.probabilityLagPositive = probabilityLagPositive; self.resamples = resamples
    }

    public func signal(_ name: String) -> SignalOnset? { signals.first { $0.signal == name } }
}

/// Onset detection on curves, the consensus across rules, and the lead-lag.
public enum OnsetAnalysis {
    /// Every rule on one curve. `steps` must be strictly increasing.
    public static func onsets(_ curve: [Double], steps: [Int], spec: SignalSpec, config: OnsetConfig) throws(ChangePointError) -> SignalOnset {
        guard curve.count == steps.count else {
            throw .invalidInput(field: "signal \(spec.name)", reason: "\(curve.count) values but \(steps.count) steps")
        }
        try SeriesCheck.steps(steps, series: spec.name)
        var methods: [MethodOnset] = []
        for rule in config.rules {
            let i = try rule.onset(curve, direction: spec.direction, series: spec.name)
            methods.append(MethodOnset(method: rule.name, index: i, step: i.map { steps[$0] }))
        }
        let found = methods.compactMap(\.step)
        let consensus = config.consensusStep(found.map(Double.init))
        return SignalOnset(signal: spec.name, direction: spec.direction, methods: methods, consensusStep: consensus,
                           spread: found.isEmpty ? nil : (found.min()!, found.max()!), interval: nil)
    }

    /// Consensus onsets only (the bootstrap's inner loop): NaN where there is none.
    static func consensus(_ curve: [Double], steps: [Int], spec: SignalSpec, config: OnsetConfig) throws(ChangePointError) -> Double {
        var found: [Double] = []
        found.reserveCapacity(config.rules.count)
        for rule in config.rules {
            if let i = try rule.onset(curve, direction: spec.direction, series: spec.name) { found.append(Double(steps[i])) }
        }
        return config.consensusStep(found) ?? .nan
    }

    /// Point estimates from per-checkpoint means (no bootstrap is possible without answers).
    public static func analyze(curves: [String: (steps: [Int], values: [Double])], config: OnsetConfig) throws(ChangePointError) -> OnsetReport {
        var sig: [SignalOnset] = []
        for spec in config.signals {
            guard let c = curves[spec.name] else { throw .invalidInput(field: "signal", reason: "no curve for '\(spec.name)'") }
            sig.append(try onsets(c.values, steps: c.steps, spec: spec, config: config))
        }
        return OnsetReport(dataset: nil, seed: nil, signals: sig, lagSteps: lag(sig, config), lagInterval: nil,
                           probabilityLagPositive: nil, resamples: 0)
    }

    static func lag(_ sig: [SignalOnset], _ config: OnsetConfig) -> Double? {
        guard let a = sig.first(where: { $0.signal == config.lagSignal })?.consensusStep,
              let b = sig.first(where: { $0.signal == config.leadSignal })?.consensusStep else { return nil }
        return a - b
    }

    /// The names of `rules` that accept a curve of `checkpoints` points.
    static func fitting(_ rules: [any OnsetRule], checkpoints: Int) -> [String] {
        let probe = (0..<checkpoints).map(Double.init)
        return rules.filter { rule in
            do throws(ChangePointError) {
                _ = try rule.onset(probe, direction: .up, series: "probe")
                return true
            } catch {
                if case .tooShort = error { return false }
                return true
            }
        }.map(\.name)
    }

    /// Full analysis from per-answer scores: one report per (dataset, seed) group, each signal's
    /// curve over the questions it has records for, with a cluster bootstrap over questions
    /// stratified by the signals sharing them (`Bootstrap.run`). `progress`, when given, counts
    /// resamples over all groups (`done` of `groups x resamples`).
    public static func analyze(records: [ScoreRecord], config: OnsetConfig,
                               progress: Bootstrap.Progress? = nil) throws(ChangePointError) -> [OnsetReport] {
        struct Group: Hashable { var dataset: String?; var seed: Int? }
        var groups: [Group: [ScoreRecord]] = [:]
        for r in records { groups[Group(dataset: r.dataset, seed: r.seed), default: []].append(r) }
        let keys = groups.keys.sorted { ($0.dataset ?? "", $0.seed ?? Int.min) < ($1.dataset ?? "", $1.seed ?? Int.min) }
        var out: [OnsetReport] = []
        let total = keys.count * max(0, config.resamples)
        for (gi, g) in keys.enumerated() {
            let recs = groups[g]!
            let label = [g.dataset, g.seed.map { "seed \($0)" }].compactMap { $0 }.joined(separator: " ")
            // Each signal over the questions it has records for (a trait judged on its own
            // question set); the bootstrap stratifies by the signals sharing each question.
            var tables: [CheckpointTable] = []
            for spec in config.signals {
                let mine = recs.filter { $0.signal == spec.name }
                if mine.isEmpty {
                    throw .invalidInput(field: "signal", reason: "no records for '\(spec.name)'" + (label.isEmpty ? "" : " in \(label)"))
                }
                tables.append(try CheckpointTable(signal: spec.name, records: mine, questions: Array(Set(mine.map(\.questionID))).sorted()))
            }
            let before = gi * max(0, config.resamples)
            var groupProgress: Bootstrap.Progress? = nil
            if let progress { groupProgress = { done, _ in progress(before + done, total) } }
            var rep: OnsetReport
            do throws(ChangePointError) { rep = try Bootstrap.run(tables: tables, config: config, progress: groupProgress) } catch {
                guard case .tooShort(let series, let count, let needed, let method) = error else { throw error }
                throw .tooFewCheckpoints(signal: series, checkpoints: count, needed: needed, method: method, fitting: fitting(config.rules, checkpoints: count))
            }
            rep.dataset = g.dataset; rep.seed = g.seed
            out.append(rep)
        }
        return out
    }
}
