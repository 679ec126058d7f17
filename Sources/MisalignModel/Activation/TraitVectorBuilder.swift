import Foundation
import MisalignKernels

/// Builds a trait vector the persona_vectors way (`*_response_avg_diff`): for each kept answer,
/// the mean of its response tokens' hidden states at every hidden-state index (a
/// `HiddenStateRequest.responseMean` capture of prompt + response); per side, the mean of those
/// over its answers, each answer weighted once whatever its length; the vector is the positive
/// side's minus the negative side's. Sums are kept in f64.
public struct TraitVectorBuilder: Sendable {
    /// Answers written under the trait-eliciting (positive) or trait-suppressing (negative)
    /// system prompts.
    public enum Side: String, Sendable { case positive, negative }

    /// Rows (`numHiddenLayers + 1`) and hidden size.
    public let entries: Int, hidden: Int
    private var sums: [Side: [Double]]
    public private(set) var answers: [Side: Int] = [.positive: 0, .negative: 0]

    public init(config: Qwen2Config) {
        entries = config.numHiddenLayers + 1; hidden = config.hiddenSize
        sums = [.positive: [Double](repeating: 0, count: entries * hidden), .negative: [Double](repeating: 0, count: entries * hidden)]
    }

    /// Adds one answer's response mean, a mean capture of every hidden-state index in order
    /// (`HiddenStateRequest.allLayers`) that averaged at least one token.
    public mutating func add(_ responseMean: HiddenStates, side: Side) {
        guard case .mean = responseMean.kind else { preconditionFailure("add takes a mean capture (HiddenStateRequest.responseMean)") }
        precondition(responseMean.layers == Array(0..<entries) && responseMean.hidden == hidden,
                     "the capture must hold every hidden-state index 0..<\(entries) of hidden size \(hidden)")
        precondition(responseMean.count > 0, "an answer with no response tokens")
        let v = responseMean.values.pointer
        sums[side]!.withUnsafeMutableBufferPointer { s in for i in 0..<s.count { s[i] += Double(v[i]) } }
        answers[side]! += 1
    }

    /// The vector: positive mean minus negative mean, with `counts` recording the answers per
    /// side (`positive`, `negative`) besides `extraCounts`.
    public func build(trait: String, model: String? = nil, layer: Int? = nil, extraCounts: [String: Int] = [:],
                      settings: String = "{}") throws(TraitVectorError) -> TraitVector {
        for side in [Side.positive, .negative] where answers[side]! == 0 {
            throw TraitVectorError.noAnswers(trait: trait, side: side.rawValue)
        }
        let out = FloatBuffer(shape: [entries, hidden], zeroed: false)
        let np = Double(answers[.positive]!), nn = Double(answers[.negative]!)
        let pos = sums[.positive]!, neg = sums[.negative]!
        for i in 0..<(entries * hidden) { out.pointer[i] = Float(pos[i] / np - neg[i] / nn) }
        var counts = extraCounts
        counts["positive"] = answers[.positive]!; counts["negative"] = answers[.negative]!
        return try TraitVector(trait: trait, values: out, model: model, layer: layer, counts: counts, settings: settings)
    }
}
