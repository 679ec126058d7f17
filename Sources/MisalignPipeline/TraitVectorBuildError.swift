import Foundation

/// What `TraitVectorBuild` can get wrong itself (the model, tokenizer, judge and file errors
/// below it keep their own types), each naming the trait file, setting or judge and what to do.
public enum TraitVectorBuildError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A setting out of range (`samples`, `min_pairs`, ...).
    case invalidSetting(name: String, value: String, expected: String)
    /// The trait file has no `instruction` pairs to write answers under.
    case noInstructions(file: String)
    /// The output's folder does not exist; checked before any work.
    case outputFolderMissing(path: String)
    /// Fewer pairs than `min_pairs` were kept. `failedMost` names the threshold most pairs failed.
    case tooFewPairs(trait: String, file: String, judge: String, counts: TraitVectorBuildCounts, required: Int, failedMost: String)

    public var description: String {
        switch self {
        case .invalidSetting(let name, let value, let expected):
            return "trait vectors: setting `\(name)` is \(value); expected \(expected)"
        case .noInstructions(let file):
            return "\(file): field `instruction` is missing or empty; a trait vector needs the trait file's "
                + "{\"pos\", \"neg\"} system-prompt pairs (persona_vectors' trait_data_extract files have them)"
        case .outputFolderMissing(let path):
            return "\(path): the folder to write the trait vector to does not exist; create it first (nothing was generated)"
        case .tooFewPairs(let trait, let file, let judge, let c, let required, let failedMost):
            var text = "\(file): trait \(trait): \(c.kept) of \(c.pairs) (positive, negative) answer pairs were kept, "
                + "\(required) are needed (`min_pairs`). Judge \(judge): \(c.judged) of \(c.generated) answers scored for the trait and coherence; "
                + "pairs failing the positive trait threshold \(c.failedPositiveTrait), the negative trait threshold \(c.failedNegativeTrait), "
                + "coherence \(c.failedCoherence), not scored \(c.unscored), empty answers \(c.empty). "
            if c.judgeErrors > 0 {
                text += "\(c.judgeErrors) verdicts failed (\(c.firstJudgeError ?? "no detail")): check the judge and run again. "
            }
            text += "Most failed \(failedMost): "
            switch failedMost {
            case TraitVectorBuildCounts.positiveTraitName:
                text += "the positive system prompts do not elicit the trait; raise `samples` or `max_new_tokens`, use a larger model, or lower `positive_threshold`"
            case TraitVectorBuildCounts.negativeTraitName:
                text += "the negative answers still show the trait (or the judge scores everything high); check the judge, or raise `negative_threshold`"
            case TraitVectorBuildCounts.coherenceName:
                text += "the answers are incoherent; raise `max_new_tokens`, use a larger model, or lower `coherence_threshold`"
            default:
                text += "the judge gave no score; check the judge and its rubrics"
            }
            return text
        }
    }
}

extension TraitVectorBuildError: LocalizedError {
    /// The message (`description`), so `localizedDescription` shows it in an app.
    public var errorDescription: String? { description }
}
