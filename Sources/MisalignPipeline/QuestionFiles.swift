import Foundation
import Yams
import MisalignIO
import MisalignJudge
import MisalignTokenizer

/// Question lists as a config writes them (`evaluation.questions`, a trait's `questions`) and
/// question files (`questions_file`): JSONL `{"id", "text"}` lines, or an emergent-misalignment
/// question YAML (`.yaml`/`.yml`).
enum QuestionLists {
    /// A list of shipped set names, shipped question ids, `all`, or `{id, text}` mappings.
    static func parse(_ q: YAMLNode, set custom: String = "custom") throws(PipelineError) -> [EvaluationQuestion] {
        var out: [EvaluationQuestion] = []
        for item in try q.list() {
            if item.isMapping {
                let id = try item.required("id", "a stable id for this question").string()
                let text = try item.required("text", "the question").string()
                try item.rejectUnknown()
                out.append(EvaluationQuestion(id: id, set: custom, text: text))
                continue
            }
            let name = try item.string()
            if name == "all" { out += EvaluationQuestions.all; continue }
            let set = EvaluationQuestions.set(name)
            if !set.isEmpty { out += set; continue }
            guard let one = EvaluationQuestions.all.first(where: { $0.id == name }) else {
                throw item.error("`\(name)` is neither a question set (general, evil, hallucination, medical, all) nor a question id (e.g. general.wish)")
            }
            out.append(one)
        }
        return out
    }

    /// The questions of a file: EM YAML by extension, JSONL otherwise. `key` names the config key.
    static func load(_ url: URL, key: String, set: String = "file") throws(PipelineError) -> [EvaluationQuestion] {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw PipelineError.missingInput(key: key, path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        if ["yaml", "yml"].contains(url.pathExtension.lowercased()) { return try emYAML(text, file: url.path, set: set) }
        var out: [EvaluationQuestion] = []
        for (number, line) in JSONLines.lines(text) {
            guard let v = try? JSONValue.parse(String(line)), let id = v["id"]?.stringValue, let t = v["text"]?.stringValue else {
                throw PipelineError.config(file: url.path, key: key, line: number, reason: "expected {\"id\": ..., \"text\": ...}")
            }
            out.append(EvaluationQuestion(id: id, set: set, text: t))
        }
        return out
    }

    /// Keys of an EM question entry that are read elsewhere in this tool (samples, judges,
    /// temperature come from the experiment) and so are accepted and ignored.
    static let ignoredEMKeys = ["samples_per_paraphrase", "judge", "judge_prompts", "temperature"]

    /// emergent-misalignment's question YAML: a list of `{id, type, paraphrases, system?, ...}`.
    /// Each paraphrase is one question: id `ID` when there is one, `ID.p1`, `ID.p2`, ... when
    /// there are several. `system` becomes that question's system prompt. Only `free_form*`
    /// types are asked (others need answer formats this tool does not score).
    static func emYAML(_ text: String, file: String, set: String) throws(PipelineError) -> [EvaluationQuestion] {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw PipelineError.config(file: file, key: "", line: nil, reason: "not valid YAML: \(error)")
        }
        let list = try YAMLNode(root ?? Node.sequence(Node.Sequence([])), path: "", file: file)
        var out: [EvaluationQuestion] = []
        for item in try list.list() {
            _ = try item.mapping()
            let id = try item.required("id", "the question's id").string()
            if let t = try item.optional("type") {
                let type = try t.string()
                guard type.hasPrefix("free_form") else { throw t.error("type `\(type)` is not asked by misalign; only free_form questions are") }
            }
            let paraphrases = try item.required("paraphrases", "the question's wordings").strings()
            guard !paraphrases.isEmpty else { throw item.error("`\(id)` has no paraphrases") }
            let system = try item.optional("system")?.string()
            for k in ignoredEMKeys { _ = try item.optional(k) }
            try item.rejectUnknown()
            for (i, p) in paraphrases.enumerated() {
                out.append(EvaluationQuestion(id: paraphrases.count == 1 ? id : "\(id).p\(i + 1)", set: set, text: p, system: system))
            }
        }
        return out
    }

    /// Appends `more` to `list`: a repeated id with the same text (and system prompt) is kept
    /// once; with a different text it is an error naming both sources.
    static func merge(_ list: inout [(q: EvaluationQuestion, from: String)], _ more: [EvaluationQuestion], from: String,
                      file: String) throws(PipelineError) {
        for q in more {
            if let old = list.first(where: { $0.q.id == q.id }) {
                guard old.q.text == q.text, old.q.system == q.system else {
                    throw PipelineError.config(file: file, key: "traits", line: nil,
                                               reason: "question `\(q.id)` has different texts in \(old.from) and \(from); give one of them another id")
                }
                continue
            }
            list.append((q, from))
        }
    }

    /// The checks every final question list passes: distinct ids, not empty, within bounds.
    static func check(_ questions: [EvaluationQuestion], file: String) throws(PipelineError) {
        var seen = Set<String>()
        for q in questions where !seen.insert(q.id).inserted {
            throw PipelineError.config(file: file, key: "evaluation.questions", line: nil, reason: "question `\(q.id)` is listed twice")
        }
        if questions.isEmpty { throw PipelineError.config(file: file, key: "evaluation.questions", line: nil, reason: "no questions") }
        if questions.count > Experiment.Bounds.questions {
            throw PipelineError.config(file: file, key: "evaluation.questions", line: nil, reason: "lists \(questions.count) questions; at most \(Experiment.Bounds.questions)")
        }
    }
}
