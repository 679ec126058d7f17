import Foundation
import MisalignJudge

/// One trait of a `traits:` section: the rubric it is judged with, the questions it is judged
/// on, and where both came from.
public struct TraitSettings: Sendable, Equatable {
    public var name: String
    public var rubric: Rubric
    /// The ids of the questions this trait is judged on; nil: every answer.
    public var questionIDs: [String]?
    /// A definition file's contrastive instruction pairs (empty otherwise), for persona vectors.
    public var instructions: [TraitInstruction]
    /// `builtin`, or the path of the definition or rubric file.
    public var source: String
    /// Whether the rubric is the shipped one of this name (so `judges.rubrics` may override it).
    public var builtin: Bool { source == "builtin" }
}

extension JudgeSettings {
    /// The questions `trait` is judged on; nil: every answer (no `traits:` section, or a trait
    /// without questions of its own).
    public func questionIDs(for trait: String) -> Set<String>? {
        traitSettings[trait]?.questionIDs.map(Set.init)
    }

    /// The rubric of every trait in `traits`: from the `traits:` section when there is one,
    /// else the shipped rubrics with `judges.rubrics` overrides.
    public func resolvedRubrics() throws(JudgeError) -> [String: Rubric] {
        if !traitSettings.isEmpty { return traitSettings.mapValues(\.rubric) }
        let set = try rubrics.map { (u) throws(JudgeError) in try RubricSet.loading(overrides: u) } ?? .builtin
        var out: [String: Rubric] = [:]
        for t in traits { out[t] = try set.require(t) }
        return out
    }
}

extension Experiment {
    /// Reads `traits:` and folds it into the evaluation and judge settings: the trait names
    /// become `judges.traits`, their rubrics (with `judges.rubrics` overrides of built-in ones)
    /// and question sets `judges.traitSettings`, and every trait's questions join
    /// `evaluation.questions`.
    static func applyTraits(_ n: YAMLNode, judgesNode: YAMLNode, _ evaluation: inout EvaluationSettings, _ judges: inout JudgeSettings,
                            path: (YAMLNode) throws(PipelineError) -> URL) throws(PipelineError) {
        var traits: [TraitSettings] = []
        var questions: [(q: EvaluationQuestion, from: String)] = []
        try QuestionLists.merge(&questions, evaluation.questions, from: "evaluation.questions", file: n.file)
        let entries = try n.entries()
        guard !entries.isEmpty else { throw n.error("is empty; name at least one trait, e.g. traits: {evil: {rubric: builtin}}") }
        for (name, v) in entries {
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_".contains($0)) }) else {
                throw v.error("trait names are letters, digits, '-' and '_' (they start question ids such as \(name).01)")
            }
            let (trait, own) = try parseTrait(name, v, path: path)
            traits.append(trait)
            try QuestionLists.merge(&questions, own, from: "traits.\(name)", file: n.file)
        }
        if let dir = judges.rubrics {
            let files: [(file: String, rubric: Rubric)]
            do { files = try RubricSet.overrideFiles(in: dir) } catch {
                throw PipelineError.config(file: n.file, key: "judges.rubrics", line: judgesNode.line, reason: error.description)
            }
            for (file, r) in files {
                guard let i = traits.firstIndex(where: { $0.name == r.name }) else {
                    throw PipelineError.config(file: n.file, key: "judges.rubrics", line: judgesNode.line,
                                               reason: "\(file) overrides the rubric `\(r.name)`, which is no configured trait (traits: "
                                                   + "\(traits.map(\.name).joined(separator: ", "))); rename or remove the file, or add the trait")
                }
                guard traits[i].builtin else {
                    throw PipelineError.config(file: n.file, key: "judges.rubrics", line: judgesNode.line,
                                               reason: "\(file) overrides `\(r.name)`, whose rubric comes from \(traits[i].source); remove one of them")
                }
                traits[i].rubric = r
                traits[i].source = file
            }
        }
        judges.traits = traits.map(\.name)
        judges.traitSettings = Dictionary(uniqueKeysWithValues: traits.map { ($0.name, $0) })
        evaluation.questions = questions.map(\.q)
        try QuestionLists.check(evaluation.questions, file: n.file)
    }

    /// One trait's entry: `{definition: FILE}` or `{rubric: builtin|FILE, questions: [...],
    /// questions_file: FILE}`. Returns the trait and its questions.
    static func parseTrait(_ name: String, _ v: YAMLNode, path: (YAMLNode) throws(PipelineError) -> URL)
        throws(PipelineError) -> (TraitSettings, [EvaluationQuestion]) {
        _ = try v.mapping()
        func judgeError(_ node: YAMLNode, _ body: () throws(JudgeError) -> Void) throws(PipelineError) {
            do { try body() } catch { throw node.error(error.description) }
        }
        if let d = try v.optional("definition") {
            for k in ["rubric", "questions", "questions_file"] where v.keys.contains(k) {
                throw PipelineError.config(file: v.file, key: v.join(k), line: v.line,
                                           reason: "cannot be used with `definition`, whose file gives the rubric and the questions")
            }
            try v.rejectUnknown()
            let url = try path(d)
            var def: TraitDefinition?
            try judgeError(d) { () throws(JudgeError) in def = try TraitDefinition.load(url, trait: name) }
            let t = def!
            return (TraitSettings(name: name, rubric: t.rubric, questionIDs: t.questions.map(\.id), instructions: t.instructions,
                                  source: url.path), t.questions)
        }
        var rubric: Rubric?
        var source = "builtin"
        let r = try v.optional("rubric")
        if let r, try r.string() != "builtin" {
            let url = try path(r)
            try judgeError(r) { () throws(JudgeError) in rubric = try Rubric.load(url, name: name) }
            if rubric!.name != name { throw r.error("\(url.path) names its rubric `\(rubric!.name)`; its `name:` must be the trait's name, `\(name)`") }
            source = url.path
        } else {
            guard let b = RubricSet.builtin[name] else {
                throw (r ?? v).error("`\(name)` has no built-in rubric (built in: \(RubricSet.builtin.rubrics.keys.sorted().joined(separator: ", "))); "
                                     + "give definition: FILE (a persona_vectors trait file) or rubric: FILE")
            }
            rubric = b
        }
        var own: [EvaluationQuestion]?
        if let q = try v.optional("questions") { own = try QuestionLists.parse(q, set: name) }
        if let f = try v.optional("questions_file") { own = (own ?? []) + (try QuestionLists.load(try path(f), key: f.path, set: name)) }
        if let own, own.isEmpty {
            throw v.error("lists no questions; remove questions/questions_file to judge `\(name)` on every answer")
        }
        try v.rejectUnknown()
        return (TraitSettings(name: name, rubric: rubric!, questionIDs: own?.map(\.id), instructions: [], source: source), own ?? [])
    }
}
