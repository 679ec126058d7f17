import Foundation
import MisalignChangePoint
import MisalignModel

/// Onset detection over the per-checkpoint curves (`detection:`).
public struct DetectionSettings: Sendable {
    public static let allMethods = OnsetPreset.allMethods
    /// The judge name under which the per-answer mean of all judges is stored and detected.
    public static let meanJudge = "mean"
    /// Which rules `threshold`, `ma-rise` and `meanshift` are (today's or the study's), and
    /// the default methods and consensus.
    public var preset = OnsetPreset.default
    public var methods = DetectionSettings.allMethods
    /// Rule parameters over the preset's defaults (`detection.rules`, `detection.baseline`).
    public var parameters = RuleParameters()
    public var consensus = Consensus.majority
    public var resamples = 2000
    public var seed: UInt64 = 0x5EED
    public var confidence = 0.95
    public var scale = 100.0
    public var lead = "hallucination"
    public var lag = "evil"
    public var minAgreeing: Int?
    /// The judge whose verdicts feed detection (a canonical judge name, or `mean`: the
    /// per-answer mean of the judges); the first judge when nil.
    public var judge: String?
    /// Direction in which each trait goes wrong; the study's when absent.
    public var directions: [String: Direction] = ["evil": .up, "hallucination": .up, "coherence": .down, "aligned": .down]
    /// Whether the pipeline computes the adapter dynamics of every checkpoint (`dynamics` stage,
    /// Docs/AdapterDynamics.md); the adapter signals (`adapter_norm`, ...) enter detection when
    /// `directions` names them.
    public var adapterDynamics = true

    public init() {}

    /// The settings of a preset: its methods and consensus.
    public init(preset: OnsetPreset) {
        self.preset = preset; methods = preset.methods; consensus = preset.defaultConsensus
    }

    /// The onset rules these settings describe (validated when the config is parsed).
    public func rules() throws(ChangePointError) -> [any OnsetRule] {
        try OnsetConfig.rules(preset: preset, methods: methods, scale: scale, parameters: parameters)
    }

    /// The ChangePoint configuration for these settings over `traits`, with `extra` rules (a
    /// pipeline's plug-in rules) beside the configured ones, counted in the consensus.
    public func onsetConfig(traits: [String], adding extra: [any OnsetRule] = []) -> OnsetConfig {
        let rules = ((try? self.rules()) ?? OnsetConfig.defaultRules(scale: scale).filter { methods.contains($0.name) }) + extra
        let signals = traits.compactMap { t in directions[t].map { SignalSpec(t, $0) } }
        return OnsetConfig(rules: rules, signals: signals, leadSignal: lead, lagSignal: lag, minAgreeing: minAgreeing,
                           consensus: consensus, resamples: resamples, seed: seed, confidence: confidence)
    }

    /// The adapter signals detection runs on: those `directions` names, in `AdapterSignal`'s order.
    public var adapterSignals: [(signal: AdapterSignal, direction: Direction)] {
        AdapterSignal.allCases.compactMap { s in directions[s.rawValue].map { (s, $0) } }
    }

    /// The settings added with the study preset, as ` key value` pairs for the analysis
    /// fingerprint; empty when they are today's defaults, so runs made before them still match.
    var fingerprintSuffix: String {
        var out = ""
        if preset != .default { out += " preset \(preset.rawValue)" }
        if consensus != preset.defaultConsensus { out += " consensus \(consensus.rawValue)" }
        if let b = parameters.baseline { out += " baseline \(b)" }
        let rules = rulesRecord
        if !rules.isEmpty { out += " rules \(rules)" }
        if !adapterDynamics { out += " adapter_dynamics false" }
        return out
    }
}
