import Foundation

/// How the rules' onset steps combine into a signal's consensus onset.
public enum Consensus: String, Sendable, CaseIterable {
    /// The median of the rules that fire, when at least `minAgreeing` fire (default: a majority).
    case majority
    /// The median of the rules that fire (one is enough unless `minAgreeing` says more).
    case median
    /// The study's `int(median)` of the rules that fire: the median truncated to a whole step.
    case medianInt = "median-int"

    /// Parses `majority`, `median`, `median-int` (or `median_int`).
    public init?(parsing s: String) { self.init(rawValue: s.replacingOccurrences(of: "_", with: "-")) }
}

/// A named set of onset rules: today's stricter rules (`default`) or the reference study's
/// three (`study`, `OnsetConfig.study`).
public enum OnsetPreset: String, Sendable, CaseIterable {
    case `default`, study

    /// Rule names in output order.
    public var methods: [String] {
        self == .study ? ["threshold", "ma-rise", "meanshift"] : ["threshold", "ma-rise", "meanshift", "zscore", "cusum", "bocpd"]
    }
    /// Rules the preset can build (the study preset adds zscore, cusum and bocpd on request).
    public static let allMethods = ["threshold", "ma-rise", "meanshift", "zscore", "cusum", "bocpd"]
    public var defaultConsensus: Consensus { self == .study ? .medianInt : .majority }
}

/// A rule parameter's value as given in YAML or on the command line.
public enum RuleParam: Sendable, Equatable {
    case number(Double)
    case flag(Bool)
    case cost(CostModel)
}

/// Overrides of onset rule parameters: `byRule[rule][key]`, plus one baseline length shared by
/// zscore, CUSUM and BOCPD (a rule's own `baseline` wins). Keys are those of `catalog`.
public struct RuleParameters: Sendable, Equatable {
    public var byRule: [String: [String: RuleParam]] = [:]
    public var baseline: Int?
    public init(byRule: [String: [String: RuleParam]] = [:], baseline: Int? = nil) { self.byRule = byRule; self.baseline = baseline }

    public enum Kind: Sendable { case int(min: Int), double(min: Double), probability, flag, cost }

    /// Every settable parameter of each rule under each preset.
    public static func catalog(_ preset: OnsetPreset, rule: String) -> [(key: String, kind: Kind)] {
        switch (preset, rule) {
        case (.study, "threshold"): return [("value", .double(min: -.infinity)), ("consecutive", .int(min: 1))]
        case (.study, "ma-rise"): return [("window", .int(min: 1)), ("patience", .int(min: 1))]
        case (.study, "meanshift"): return [("min_segment", .int(min: 1))]
        case (_, "threshold"): return [("value", .double(min: -.infinity)), ("consecutive", .int(min: 1))]
        case (_, "ma-rise"): return [("width", .int(min: 1)), ("patience", .int(min: 1)), ("min_rise", .double(min: 0))]
        case (_, "meanshift"): return [("cost", .cost), ("penalty", .double(min: 0)), ("min_size", .int(min: 1)), ("min_shift", .double(min: 0))]
        case (_, "zscore"): return [("baseline", .int(min: 2)), ("z", .double(min: 0)), ("consecutive", .int(min: 1)),
                                    ("min_sd", .double(min: 0)), ("robust_sd", .flag)]
        case (_, "cusum"): return [("baseline", .int(min: 2)), ("drift", .double(min: 0)), ("h", .double(min: 1e-12)),
                                   ("min_sd", .double(min: 0)), ("robust_sd", .flag)]
        case (_, "bocpd"): return [("baseline", .int(min: 2)), ("hazard", .double(min: 1.000001)), ("window", .int(min: 1)),
                                   ("alarm_prob", .probability), ("confirm", .int(min: 1)), ("min_sd", .double(min: 0))]
        default: return []
        }
    }

    /// The rule name as written (`ma_rise` or `ma-rise`) in its canonical form.
    public static func ruleName(_ s: String) -> String { s.replacingOccurrences(of: "_", with: "-") }

    /// Checks a key against the catalog and a number against the key's kind: nil when fine, or
    /// what is wrong (for an error naming the YAML key or flag).
    public static func problem(preset: OnsetPreset, rule: String, key: String, _ v: RuleParam) -> String? {
        guard OnsetPreset.allMethods.contains(rule) else {
            return "unknown rule `\(rule)`; use \(OnsetPreset.allMethods.joined(separator: ", "))"
        }
        let cat = catalog(preset, rule: rule)
        guard let kind = cat.first(where: { $0.key == key })?.kind else {
            return "`\(key)` is not a parameter of \(rule) with preset \(preset.rawValue); use \(cat.map(\.key).joined(separator: ", "))"
        }
        switch (kind, v) {
        case (.int(let lo), .number(let x)):
            return x == x.rounded() && x >= Double(lo) && x <= 1e9 ? nil : "\(rule).\(key) must be a whole number >= \(lo)"
        case (.double(let lo), .number(let x)):
            return x.isFinite && x >= lo ? nil : "\(rule).\(key) must be a finite number" + (lo.isFinite ? " >= \(ScoreRecord.number(lo))" : "")
        case (.probability, .number(let x)): return x > 0 && x < 1 ? nil : "\(rule).\(key) must be in (0, 1)"
        case (.flag, .flag), (.cost, .cost): return nil
        case (.flag, _): return "\(rule).\(key) must be true or false"
        case (.cost, _): return "\(rule).\(key) must be l2, l1 or normal"
        default: return "\(rule).\(key) must be a number"
        }
    }

    func number(_ rule: String, _ key: String) -> Double? {
        if case .number(let x)? = byRule[rule]?[key] { return x }
        return nil
    }
    func int(_ rule: String, _ key: String) -> Int? { number(rule, key).map { Int($0) } }
    func flag(_ rule: String, _ key: String) -> Bool? {
        if case .flag(let b)? = byRule[rule]?[key] { return b }
        return nil
    }
    func cost(_ rule: String) -> CostModel? {
        if case .cost(let c)? = byRule[rule]?["cost"] { return c }
        return nil
    }
    func baseline(_ rule: String) -> Int { int(rule, "baseline") ?? baseline ?? 10 }
}

extension OnsetConfig {
    /// The reference study's three rules on a 0-`scale` scale: `StudyThresholdRule` at half
    /// scale (one point), `StudyMovingAverageRule` (window 3, patience 2, zero-padded edges),
    /// `StudyMeanShiftRule` (min segment 2).
    public static func studyRules(scale: Double = 100) -> [any OnsetRule] {
        [StudyThresholdRule(value: scale / 2, consecutive: 1), StudyMovingAverageRule(window: 3, patience: 2, scale: scale),
         StudyMeanShiftRule(minSegment: 2)]
    }

    /// The study's protocol: its three rules and `int(median)` of those that fire.
    public static func study(scale: Double = 100, signals: [SignalSpec] = SignalSpec.standard, leadSignal: String = "hallucination",
                             lagSignal: String = "evil", resamples: Int = 2000, seed: UInt64 = 0x5EED, confidence: Double = 0.95) -> OnsetConfig {
        OnsetConfig(rules: studyRules(scale: scale), signals: signals, leadSignal: leadSignal, lagSignal: lagSignal,
                    consensus: .medianInt, resamples: resamples, seed: seed, confidence: confidence)
    }

    /// The rules `methods` (in `OnsetPreset.allMethods` order) of `preset` with `parameters`
    /// applied over the preset's defaults for a 0-`scale` scale. Throws `invalidParameter`
    /// for an unknown rule or key, or a value out of range.
    public static func rules(preset: OnsetPreset, methods: [String]? = nil, scale: Double = 100,
                             parameters p: RuleParameters = RuleParameters()) throws(ChangePointError) -> [any OnsetRule] {
        let wanted = (methods ?? preset.methods).map(RuleParameters.ruleName)
        for m in wanted where !OnsetPreset.allMethods.contains(m) {
            throw .invalidParameter(name: "method", value: m, reason: "unknown rule; use \(OnsetPreset.allMethods.joined(separator: ", "))")
        }
        for (rule, keys) in p.byRule {
            for (key, v) in keys {
                if let why = RuleParameters.problem(preset: preset, rule: rule, key: key, v) {
                    throw .invalidParameter(name: "\(rule).\(key)", value: "\(v)", reason: why)
                }
            }
        }
        if let b = p.baseline, b < 2 { throw .invalidParameter(name: "baseline", value: "\(b)", reason: "needs at least 2 checkpoints for an sd") }
        let floor = 0.01 * scale
        var out: [any OnsetRule] = []
        for m in OnsetPreset.allMethods where wanted.contains(m) {
            switch (preset, m) {
            case (.study, "threshold"):
                out.append(StudyThresholdRule(value: p.number(m, "value") ?? scale / 2, consecutive: p.int(m, "consecutive") ?? 1))
            case (.study, "ma-rise"):
                out.append(StudyMovingAverageRule(window: p.int(m, "window") ?? 3, patience: p.int(m, "patience") ?? 2, scale: scale))
            case (.study, "meanshift"):
                out.append(StudyMeanShiftRule(minSegment: p.int(m, "min_segment") ?? 2))
            case (_, "threshold"):
                out.append(ThresholdRule(threshold: p.number(m, "value") ?? scale / 2, consecutive: p.int(m, "consecutive") ?? 2))
            case (_, "ma-rise"):
                out.append(MovingAverageRiseRule(width: p.int(m, "width") ?? 3, patience: p.int(m, "patience") ?? 2,
                                                 minRise: p.number(m, "min_rise") ?? 0.05 * scale))
            case (_, "meanshift"):
                out.append(MeanShiftRule(model: p.cost(m) ?? .l2, penalty: p.number(m, "penalty"), minSize: p.int(m, "min_size") ?? 2,
                                         minShift: p.number(m, "min_shift") ?? 0.02 * scale))
            case (_, "zscore"):
                out.append(BaselineZRule(baseline: p.baseline(m), z: p.number(m, "z") ?? 3, consecutive: p.int(m, "consecutive") ?? 2,
                                         minSD: p.number(m, "min_sd") ?? floor, robustSD: p.flag(m, "robust_sd") ?? true))
            case (_, "cusum"):
                out.append(CusumRule(drift: p.number(m, "drift") ?? 0.5, threshold: p.number(m, "h") ?? 5, baseline: p.baseline(m),
                                     minSD: p.number(m, "min_sd") ?? floor, robustSD: p.flag(m, "robust_sd") ?? true))
            default:
                out.append(BocpdRule(baseline: p.baseline(m), hazardLambda: p.number(m, "hazard") ?? 100, window: p.int(m, "window") ?? 10,
                                     alarmProbability: p.number(m, "alarm_prob") ?? 0.8, confirm: p.int(m, "confirm") ?? 3,
                                     minSD: p.number(m, "min_sd") ?? floor))
            }
        }
        return out
    }
}
