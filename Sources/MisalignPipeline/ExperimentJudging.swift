import Foundation
import MisalignJudge

extension Experiment {
    /// `evaluation:`. With a `traits:` section (`traitsSection`) the questions default to none
    /// (each trait brings its own), and the list is checked after the traits' are merged in.
    static func parseEvaluation(_ n: YAMLNode?, file: String, path: (YAMLNode) throws(PipelineError) -> URL,
                                traitsSection: Bool = false) throws(PipelineError) -> EvaluationSettings {
        var e = EvaluationSettings(questions: traitsSection ? [] : EvaluationQuestions.all)
        guard let n = try n?.mapping() else { return e }
        if let q = try n.optional("questions") { e.questions = try QuestionLists.parse(q) }
        if let f = try n.optional("questions_file") { e.questions += try QuestionLists.load(try path(f), key: f.path) }
        var seen = Set<String>()
        for q in e.questions where !seen.insert(q.id).inserted {
            throw PipelineError.config(file: file, key: "evaluation.questions", line: nil, reason: "question `\(q.id)` is listed twice")
        }
        if !traitsSection { try QuestionLists.check(e.questions, file: file) }
        try readSection(n, into: &e, structural: ["questions", "questions_file"])
        try n.rejectUnknown()
        return e
    }

    /// `judges:`. With a `traits:` section (`traitsSection`), `judges.traits` is refused and the
    /// rubrics are resolved by `applyTraits`.
    static func parseJudges(_ n: YAMLNode, path: (YAMLNode) throws(PipelineError) -> URL,
                            traitsSection: Bool = false) throws(PipelineError) -> JudgeSettings {
        _ = try n.mapping()
        let models = try n.required("models", "a list of judges: openai:MODEL[@URL], anthropic:MODEL[@URL] or local:DIR")
        var specs: [JudgeSpec] = []
        for name in try models.strings() {
            do { specs.append(try JudgeSpec(parsing: name)) } catch { throw models.error(error.description) }
        }
        // Stored verdicts are keyed by the canonical name: respelling a URL is the same judge.
        let names = specs.map(\.canonicalName)
        if names.isEmpty { throw models.error("is empty") }
        if Set(names).count != names.count { throw models.error("lists a judge twice (URLs are compared in canonical form: \(names.joined(separator: ", ")))") }
        var j = JudgeSettings(judges: specs, names: names)
        if let v = try n.optional("traits") {
            if traitsSection {
                throw v.error("cannot be used with a top-level `traits:` section, which names the traits and their rubrics; "
                              + "move these traits there (e.g. traits: {evil: {rubric: builtin}}) and remove judges.traits")
            }
            j.traits = try v.strings()
            if j.traits.isEmpty || Set(j.traits).count != j.traits.count { throw v.error("must list distinct traits") }
        }
        if let v = try n.optional("rubrics") { j.rubrics = try path(v) }
        if !traitsSection {
            let rubrics: RubricSet
            do { rubrics = try j.rubrics.map { (u) throws(JudgeError) in try RubricSet.loading(overrides: u, traits: j.traits) } ?? .builtin } catch {
                throw PipelineError.config(file: n.file, key: "judges.rubrics", line: nil, reason: error.description)
            }
            for t in j.traits where rubrics[t] == nil {
                throw PipelineError.config(file: n.file, key: "judges.traits", line: n.line,
                                           reason: "no rubric for `\(t)`; built in: \(RubricSet.builtin.rubrics.keys.sorted().joined(separator: ", "))")
            }
        }
        if let v = try n.optional("cache") { j.cache = try path(v) }
        if let p = try n.optional("pricing") {
            for (written, v) in try p.entries() {
                let judge = JudgeSpec.canonicalName(written)
                guard names.contains(judge) else { throw v.error("`\(written)` is not one of judges.models") }
                let input = try v.required("input_per_million", "price per million input tokens").double(in: 0...1e6, ">= 0")
                let output = try v.required("output_per_million", "price per million output tokens").double(in: 0...1e6, ">= 0")
                try v.rejectUnknown()
                j.pricing[judge] = JudgePricing(inputPerMillion: input, outputPerMillion: output)
            }
        }
        try parseCalibration(n, into: &j, path: path)
        try readSection(n, into: &j, structural: ["models", "traits", "rubrics", "cache", "pricing",
                                                  "calibration", "calibration_set", "calibration_exempt"])
        return j
    }

    /// `judges.calibration`, `judges.calibration_set` and `judges.calibration_exempt`.
    private static func parseCalibration(_ n: YAMLNode, into j: inout JudgeSettings,
                                         path: (YAMLNode) throws(PipelineError) -> URL) throws(PipelineError) {
        if let v = try n.optional("calibration") {
            let text = try v.word()  // `off` unquoted is a YAML 1.1 boolean
            guard let mode = CalibrationGateMode(rawValue: text) else {
                throw v.error("expected require, warn or off, found `\(text)`")
            }
            j.calibration = mode
        }
        if let v = try n.optional("calibration_set") {
            let url = try path(v)
            do { _ = try CalibrationSet.load(url) } catch { throw v.error(error.description) }
            j.calibrationSet = url
        }
        if let v = try n.optional("calibration_exempt") {
            for (written, reason) in try v.entries() {
                let text = try reason.string().trimmingCharacters(in: .whitespacesAndNewlines)
                if text.isEmpty { throw reason.error("give the reason this judge is not calibrated; the report shows it") }
                j.calibrationExempt[JudgeSpec.canonicalName(written)] = text
            }
        }
    }
}
