import Foundation
import MisalignGeneration
import MisalignIO

/// The settings of `TraitVectorBuild` (`misalign vectors`). The defaults are persona_vectors':
/// its extraction keeps a (positive, negative) pair of answers when the positive answer's trait
/// score is at least 50, the negative one's below 50 (`100 - threshold`) and both are coherent
/// (coherence at least 50).
public struct TraitVectorBuildSettings: Sendable, Equatable {
    /// Answers per (question, instruction pair) and side.
    public var samples = 1
    /// Most new tokens per answer (persona_vectors: 1000).
    public var maxNewTokens = 1000
    /// Sampling temperature; nil: persona_vectors' rule, 0 (greedy) for one sample and 1 for more.
    public var temperature: Double?
    public var topP = 1.0
    /// Sampling seed (answer i of a prompt draws from `SplitMix64.forSample(seed:prompt:sample: i)`).
    public var seed: UInt64 = 0
    /// A positive answer is kept when its trait score is at least this.
    public var positiveThreshold = 50.0
    /// A negative answer is kept when its trait score is below this.
    public var negativeThreshold = 50.0
    /// Both answers of a kept pair score at least this for coherence.
    public var coherenceThreshold = 50.0
    /// Kept pairs required to build a vector; at least 2, so that the layer rule's pooled
    /// standard deviation has a degree of freedom.
    public var minimumPairs = 2
    /// Answers decoding at once.
    public var maxBatchSequences = 16
    /// Verdicts in progress at once.
    public var judgeMaxInFlight = 16

    public init() {}

    /// The temperature the answers are sampled at.
    public var effectiveTemperature: Double { temperature ?? (samples == 1 ? 0 : 1) }

    /// The sampling parameters of the answers.
    public var sampling: SamplingParameters { SamplingParameters(temperature: effectiveTemperature, topP: topP) }

    /// Throws `invalidSetting` naming the first setting out of range.
    public func validate() throws(TraitVectorBuildError) {
        func check(_ ok: Bool, _ name: String, _ value: String, _ expected: String) throws(TraitVectorBuildError) {
            if !ok { throw .invalidSetting(name: name, value: value, expected: expected) }
        }
        try check(samples >= 1, "samples", "\(samples)", "an integer of at least 1")
        try check(maxNewTokens >= 1, "max_new_tokens", "\(maxNewTokens)", "an integer of at least 1")
        if let t = temperature { try check(t >= 0 && t.isFinite, "temperature", "\(t)", "a number of at least 0 (0: greedy)") }
        try check(topP > 0 && topP <= 1, "top_p", "\(topP)", "a number in (0, 1]")
        for (name, v) in [("positive_threshold", positiveThreshold), ("negative_threshold", negativeThreshold),
                          ("coherence_threshold", coherenceThreshold)] {
            try check(v >= 0 && v <= 100, name, "\(v)", "a score in [0, 100]")
        }
        try check(minimumPairs >= 2, "min_pairs", "\(minimumPairs)", "an integer of at least 2 (the layer rule needs two pairs)")
        try check(maxBatchSequences >= 1, "max_batch_sequences", "\(maxBatchSequences)", "an integer of at least 1")
        try check(judgeMaxInFlight >= 1, "judges.max_in_flight", "\(judgeMaxInFlight)", "an integer of at least 1")
    }

    /// The settings as the vector file's `settings` metadata: these values, and what the vector
    /// was made from (`extra`: the trait file's and the rubrics' hashes, the judge).
    func json(extra: [(String, JSONValue)]) -> String {
        var pairs: [(String, JSONValue)] = [
            ("samples", .int(Int64(samples))), ("max_new_tokens", .int(Int64(maxNewTokens))),
            ("temperature", .double(effectiveTemperature)), ("top_p", .double(topP)), ("seed", .string(String(seed))),
            ("positive_threshold", .double(positiveThreshold)), ("negative_threshold", .double(negativeThreshold)),
            ("coherence_threshold", .double(coherenceThreshold)), ("min_pairs", .int(Int64(minimumPairs))),
            ("layer_rule", .string(TraitVectorBuild.layerRule)),
        ]
        pairs += extra
        return JSONValue.object(JSONObject(pairs)).serialized()
    }
}
