import Foundation
import MisalignIO

/// One contrastive instruction pair of a trait file: a system prompt that elicits the trait
/// (`pos`) and one that suppresses it (`neg`). Kept for persona vectors; judging ignores them.
public struct TraitInstruction: Sendable, Equatable {
    public var pos: String
    public var neg: String
    public init(pos: String, neg: String) { self.pos = pos; self.neg = neg }
}

/// A trait defined by a file in persona_vectors' trait format (`data_generation/trait_data_eval/
/// NAME.json` in safety-research/persona_vectors):
///
///     {"instruction": [{"pos": "...", "neg": "..."}, ...],
///      "questions": ["...", ...],
///      "eval_prompt": "... {question} ... {answer} ..."}
///
/// The `eval_prompt` becomes the trait's rubric, sent verbatim with `{question}` and `{answer}`
/// filled. That project fills it with Python's `str.format`, so `{{` and `}}` stand for single
/// braces here too; any other brace is sent as written. The questions get the ids
/// `TRAIT.01`, `TRAIT.02`, ... in file order (wider numbers past 99). The rubric's SHA-256 is the
/// file's content hash, so editing the file (prompt or questions) never reuses old verdicts.
public struct TraitDefinition: Sendable, Equatable {
    public var name: String
    public var instructions: [TraitInstruction]
    public var questions: [EvaluationQuestion]
    public var rubric: Rubric
    /// SHA-256 of the file's bytes, lower-case hex.
    public var sha256: String

    /// The stable id of the `index`-th question (0-based) of a trait with `count` questions.
    public static func questionID(trait: String, index: Int, count: Int) -> String {
        let width = max(2, String(count).count)
        let n = String(index + 1)
        return "\(trait).\(String(repeating: "0", count: max(0, width - n.count)))\(n)"
    }

    /// Reads and checks a trait file; errors name the file and the field.
    public static func load(_ url: URL, trait: String) throws(JudgeError) -> TraitDefinition {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .invalidInput("\(url.path): cannot read the trait definition file")
        }
        return try parse(data, trait: trait, file: url.path)
    }

    /// Parses a trait file's bytes. `file` names it in errors.
    public static func parse(_ data: Data, trait: String, file: String) throws(JudgeError) -> TraitDefinition {
        guard let text = String(data: JSONLines.droppingBOM(data), encoding: .utf8) else {
            throw .invalidInput("\(file): not UTF-8 text")
        }
        let root: JSONValue
        do { root = try JSONValue.parse(text) } catch {
            throw .invalidInput("\(file): not valid JSON (\(error)); expected {\"instruction\": [...], \"questions\": [...], \"eval_prompt\": \"...\"}")
        }
        guard root.objectValue != nil else { throw .invalidInput("\(file): the top level must be a JSON object with instruction, questions and eval_prompt") }
        guard let promptValue = root["eval_prompt"] else {
            throw .invalidInput("\(file): field `eval_prompt` is missing; it is the judge's prompt, with {question} and {answer} placeholders")
        }
        guard let prompt = promptValue.stringValue else { throw .invalidInput("\(file): field `eval_prompt` must be a string") }
        guard prompt.contains("{answer}") else {
            throw .invalidInput("\(file): field `eval_prompt` has no {answer} placeholder, so the judge would never see the answer")
        }
        guard let qs = root["questions"] else { throw .invalidInput("\(file): field `questions` is missing; list the trait's questions") }
        guard let list = qs.arrayValue else { throw .invalidInput("\(file): field `questions` must be a list of strings") }
        guard !list.isEmpty else {
            throw .invalidInput("\(file): field `questions` is empty; a trait file lists the questions its trait is judged on")
        }
        var questions: [EvaluationQuestion] = []
        for (i, q) in list.enumerated() {
            guard let s = q.stringValue, !s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw .invalidInput("\(file): field `questions[\(i)]` must be a non-empty string")
            }
            questions.append(EvaluationQuestion(id: questionID(trait: trait, index: i, count: list.count), set: trait, text: s))
        }
        var instructions: [TraitInstruction] = []
        if let ins = root["instruction"] {
            guard let items = ins.arrayValue else { throw .invalidInput("\(file): field `instruction` must be a list of {\"pos\", \"neg\"} objects") }
            for (i, item) in items.enumerated() {
                guard let pos = item["pos"]?.stringValue, let neg = item["neg"]?.stringValue else {
                    throw .invalidInput("\(file): field `instruction[\(i)]` must be an object with string fields pos and neg")
                }
                instructions.append(TraitInstruction(pos: pos, neg: neg))
            }
        }
        let sha = SHA256.hex(bytes: Array(data))
        let rubric = Rubric(name: trait, version: 1, escapeWords: Rubric.escapeWords(mentionedIn: prompt), template: prompt,
                            braces: .doubled, identity: sha)
        return TraitDefinition(name: trait, instructions: instructions, questions: questions, rubric: rubric, sha256: sha)
    }
}
