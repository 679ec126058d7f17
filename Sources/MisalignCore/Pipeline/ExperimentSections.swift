import Foundation

extension Experiment {
    static func parseEvaluation(_ n: YAMLNode?, file: String, path: (YAMLNode) throws(PipelineError) -> URL) throws(PipelineError) -> EvaluationSettings {
        var e = EvaluationSettings(questions: EvaluationQuestions.all)
        guard let n = try n?.mapping() else { return e }
        if let q = try n.optional("questions") {
            e.questions = []
            for item in try q.list() {
                if item.isMapping {
                    let id = try item.required("id", "a stable id for this question").string()
                    let text = try item.required("text", "the question").string()
                    try item.rejectUnknown()
                    e.questions.append(EvaluationQuestion(id: id, set: "custom", text: text))
                    continue
                }
                let name = try item.string()
                if name == "all" { e.questions += EvaluationQuestions.all; continue }
                let set = EvaluationQuestions.set(name)
                if !set.isEmpty { e.questions += set; continue }
                guard let one = EvaluationQuestions.all.first(where: { $0.id == name }) else {
                    throw item.error("`\(name)` is neither a question set (general, evil, hallucination, medical, all) nor a question id (e.g. general.wish)")
                }
                e.questions.append(one)
            }
        }
        if let f = try n.optional("questions_file") {
            let url = try path(f)
            let text: String
            do { text = try String(contentsOf: url, encoding: .utf8) } catch {
                throw PipelineError.missingInput(key: f.path, path: url.path, reason: "cannot read: \(error.localizedDescription)")
            }
            for (number, line) in JSONLines.lines(text) {
                guard let v = try? JSONValue.parse(String(line)), let id = v["id"]?.stringValue, let t = v["text"]?.stringValue else {
                    throw PipelineError.config(file: url.path, key: "questions_file", line: number, reason: "expected {\"id\": ..., \"text\": ...}")
                }
                e.questions.append(EvaluationQuestion(id: id, set: "file", text: t))
            }
        }
        var seen = Set<String>()
        for q in e.questions where !seen.insert(q.id).inserted {
            throw PipelineError.config(file: file, key: "evaluation.questions", line: nil, reason: "question `\(q.id)` is listed twice")
        }
        if e.questions.isEmpty { throw PipelineError.config(file: file, key: "evaluation.questions", line: nil, reason: "no questions") }
        if e.questions.count > Bounds.questions {
            throw PipelineError.config(file: file, key: "evaluation.questions", line: nil, reason: "lists \(e.questions.count) questions; at most \(Bounds.questions)")
        }
        if let v = try n.optional("samples") { e.samples = try v.int(min: 1, max: Bounds.samples) }
        if let v = try n.optional("max_new_tokens") { e.maxNewTokens = try v.int(min: 1, max: Bounds.maxNewTokens) }
        if let v = try n.optional("temperature") { e.sampling.temperature = try v.double(in: 0...100, ">= 0 (0 = greedy)") }
        if let v = try n.optional("top_p") { e.sampling.topP = try v.double(in: 1e-9...1, "in (0, 1]") }
        if let v = try n.optional("top_k") { e.sampling.topK = try v.int(min: 0, max: Bounds.topK) }
        if let v = try n.optional("min_p") { e.sampling.minP = try v.double(in: 0...0.999999, "in [0, 1)") }
        if let v = try n.optional("repetition_penalty") { e.sampling.repetitionPenalty = try v.double(in: 1e-9...100, "> 0") }
        if let v = try n.optional("seed") { e.seed = UInt64(try v.int(min: 0)) }
        if let v = try n.optional("include_base") { e.includeBase = try v.bool() }
        if let v = try n.optional("system_prompt") { e.systemPrompt = try v.string() }
        try n.rejectUnknown()
        return e
    }

    static func parseJudges(_ n: YAMLNode, path: (YAMLNode) throws(PipelineError) -> URL) throws(PipelineError) -> JudgeSettings {
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
            j.traits = try v.strings()
            if j.traits.isEmpty || Set(j.traits).count != j.traits.count { throw v.error("must list distinct traits") }
        }
        if let v = try n.optional("rubrics") { j.rubrics = try path(v) }
        let rubrics: RubricSet
        do { rubrics = try j.rubrics.map { (u) throws(JudgeError) in try RubricSet.loading(overrides: u) } ?? .builtin } catch {
            throw PipelineError.config(file: n.file, key: "judges.rubrics", line: nil, reason: error.description)
        }
        for t in j.traits where rubrics[t] == nil {
            throw PipelineError.config(file: n.file, key: "judges.traits", line: n.line,
                                       reason: "no rubric for `\(t)`; built in: \(RubricSet.builtin.rubrics.keys.sorted().joined(separator: ", "))")
        }
        if let v = try n.optional("max_in_flight") { j.maxInFlight = try v.int(min: 1, max: Bounds.inFlight) }
        if let v = try n.optional("timeout") { j.timeout = try v.double(in: 0.001...86400, "seconds > 0") }
        if let v = try n.optional("max_attempts") { j.maxAttempts = try v.int(min: 1, max: Bounds.attempts) }
        if let v = try n.optional("cache") { j.cache = try path(v) }
        if let v = try n.optional("min_numeric_mass") { j.minNumericMass = try v.double(in: 0...1) }
        if let v = try n.optional("local_mode") {
            switch try v.string() {
            case "expectation": j.localMode = .expectation
            case "greedy": j.localMode = .greedy(maxTokens: 8)
            default: throw v.error("must be expectation or greedy")
            }
        }
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
        try n.rejectUnknown()
        return j
    }

    static func parseAggregation(_ n: YAMLNode?) throws(PipelineError) -> AggregationSettings {
        var a = AggregationSettings()
        guard let n = try n?.mapping() else { return a }
        if let v = try n.optional("confidence") { a.confidence = try v.double(in: 0.5...0.9999, "in [0.5, 1)") }
        if let v = try n.optional("threshold") { a.threshold = try v.double() }
        if let c = try n.optional("coherence_filter") {
            _ = try c.mapping()
            if let v = try c.optional("mode") {
                guard let m = AggregationSettings.CoherenceFilter(rawValue: try v.string()) else { throw v.error("must be none or exclude") }
                a.coherenceFilter = m
            }
            if let v = try c.optional("trait") { a.coherenceTrait = try v.string() }
            if let v = try c.optional("min") { a.coherenceMin = try v.double() }
            try c.rejectUnknown()
        }
        if let m = try n.optional("misaligned") {
            _ = try m.mapping()
            if let v = try m.optional("trait") { a.misalignedTrait = try v.string() }
            if let v = try m.optional("above") { a.misalignedAbove = try v.double() }
            if let v = try m.optional("coherent_above") { a.coherentAbove = try v.double() }
            try m.rejectUnknown()
        }
        try n.rejectUnknown()
        return a
    }
}
