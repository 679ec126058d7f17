import Foundation
import MisalignIO
import MisalignJudge
import MisalignModel

/// What a trait-vector build generated, judged and kept. A pair is the positive and the
/// negative answer to one question under one instruction pair, with the same sample index.
public struct TraitVectorBuildCounts: Sendable, Equatable {
    public var questions = 0, instructions = 0, samples = 0
    /// Pairs generated (questions x instructions x samples).
    public var pairs = 0
    /// Answers generated, both sides.
    public var generated = 0
    /// Answers whose trait and coherence verdicts are both scores.
    public var judged = 0
    /// Pairs left out because a verdict is not a score (a refusal, no numeric mass,
    /// unparseable, a failed call).
    public var unscored = 0
    /// Verdicts whose call failed (counted in `unscored` too), and the first one's detail.
    public var judgeErrors = 0
    public var firstJudgeError: String?
    /// Scored pairs failing each threshold (a pair may fail several).
    public var failedPositiveTrait = 0, failedNegativeTrait = 0, failedCoherence = 0
    /// Pairs that passed the thresholds but have an answer without tokens (nothing to average).
    public var empty = 0
    /// Pairs kept: answers per side in the vector.
    public var kept = 0

    static let positiveTraitName = "the positive trait threshold (`positive_threshold`)"
    static let negativeTraitName = "the negative trait threshold (`negative_threshold`)"
    static let coherenceName = "the coherence threshold (`coherence_threshold`)"
    static let unscoredName = "scoring (no score from the judge)"

    /// The reason most pairs were left out, for the error when too few are kept.
    public var failedMost: String {
        let reasons = [(failedPositiveTrait, Self.positiveTraitName), (failedNegativeTrait, Self.negativeTraitName),
                       (failedCoherence, Self.coherenceName), (unscored, Self.unscoredName)]
        return reasons.max { $0.0 < $1.0 }!.1   // ties: the first listed
    }

    /// The counts stored in the vector file's `counts` metadata (besides `positive` and
    /// `negative`, which the builder adds).
    public var metadata: [String: Int] {
        ["questions": questions, "instructions": instructions, "samples": samples, "pairs": pairs, "generated": generated,
         "judged": judged, "unscored": unscored, "judge_errors": judgeErrors, "failed_positive_trait": failedPositiveTrait,
         "failed_negative_trait": failedNegativeTrait, "failed_coherence": failedCoherence, "empty": empty]
    }
}

/// One generated answer with its verdicts.
public struct TraitVectorAnswer: Sendable, Equatable {
    public var side: TraitVectorBuilder.Side
    /// The system prompt it was written under, and the rendered prompt (chat template) text.
    public var system: String
    public var promptText: String
    public var answer: String
    /// Trait and coherence verdicts.
    public var trait: Verdict
    public var coherence: Verdict
}

/// One (question, instruction pair, sample) with both answers, and whether it was kept.
public struct TraitVectorPair: Sendable, Equatable {
    /// Indices in the trait file: question, instruction pair; and the sample index.
    public var question: Int, instruction: Int, sample: Int
    public var questionID: String
    public var questionText: String
    public var positive: TraitVectorAnswer
    public var negative: TraitVectorAnswer
    public var kept: Bool

    /// One JSON line per answer pair, for inspection (`misalign vectors` writes them with
    /// its answers output).
    public func json() -> JSONValue {
        func side(_ a: TraitVectorAnswer) -> JSONValue {
            .object(JSONObject([("system", .string(a.system)), ("answer", .string(a.answer)),
                                ("trait_score", a.trait.score.map { .double($0) } ?? .null), ("trait_status", .string(a.trait.status.rawValue)),
                                ("coherence_score", a.coherence.score.map { .double($0) } ?? .null),
                                ("coherence_status", .string(a.coherence.status.rawValue))]))
        }
        return .object(JSONObject([("question_id", .string(questionID)), ("question", .string(questionText)),
                                   ("instruction", .int(Int64(instruction))), ("sample", .int(Int64(sample))),
                                   ("kept", .bool(kept)), ("positive", side(positive)), ("negative", side(negative))]))
    }
}

/// Progress of a build: the phase (`generate`, `judge`, `capture`) and its items.
public struct TraitVectorBuildProgress: Sendable {
    public var phase: String
    public var done: Int
    public var total: Int
}
