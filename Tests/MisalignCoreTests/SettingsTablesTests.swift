import Testing
import Foundation
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// The evaluation, generation, judging and detection settings are each declared once
/// (`SettingGroup.keys`) and read from a command's flags, a JSON settings file and an
/// experiment's YAML section by the same code: the same values give the same settings and
/// records, a bad value the same message, and every setting that changes results is in a
/// fingerprint.
@Suite
struct SettingsTablesTests {
    static let head = "model: m\noutput: out\ndatasets: {medical: med.jsonl}\n"
    static let judges = "judges: {models: [\"openai:gpt-4.1-mini\", \"anthropic:claude-x\"]}\n"

    /// An experiment with `body`, and the two judges unless it has its own `judges:`.
    static func experiment(_ body: String) throws -> Experiment {
        let dir = Fixtures.temporaryDirectory("settings-tables")
        try "{}\n".write(to: dir.appendingPathComponent("med.jsonl"), atomically: true, encoding: .utf8)
        return try Experiment.parse(head + (body.contains("judges:") ? "" : judges) + body, file: "x.yaml", base: dir)
    }

    static func fromJSON<G: SettingGroup>(_ text: String, into g: inout G) throws {
        let dir = Fixtures.temporaryDirectory("settings-tables-json")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("s.json")
        try text.write(to: url, atomically: true, encoding: .utf8)
        let given = try g.apply(jsonFile: url)
        try g.validate(given: given)
    }

    static func fromFlags<G: SettingGroup>(_ entries: [(String, SettingValue)], into g: inout G) throws {
        let given = try g.apply(entries.map { SettingEntry($0.0, $0.1) }, from: .flags)
        try g.validate(given: given)
    }

    static func text(_ fields: [(String, String)]) -> [String] { fields.map { "\($0.0)=\($0.1)" } }

    @Test func evaluationAndGenerationFromEverySourceAreTheSame() throws {
        let e = try Self.experiment("""
            evaluation: {samples: 7, max_new_tokens: 64, temperature: 0.7, top_p: 0.9, top_k: 40, min_p: 0.05, repetition_penalty: 1.1, seed: 5, include_base: false, system_prompt: "Be brief."}
            generation: {precision: bf16, weights: mapped, max_batch_sequences: 8}

            """)
        var flags = EvaluationSettings()
        try Self.fromFlags([("samples", .int(7)), ("max-new-tokens", .int(64)), ("temperature", .number(0.7)), ("top-p", .number(0.9)),
                            ("top-k", .int(40)), ("min-p", .number(0.05)), ("repetition-penalty", .number(1.1)), ("seed", .text("5")),
                            ("system", .text("Be brief."))], into: &flags)
        flags.includeBase = false   // not a flag: a single call has no base step
        var json = EvaluationSettings()
        try Self.fromJSON(#"{"samples": 7, "max-new-tokens": 64, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "#
                          + #""repetition_penalty": 1.1, "seed": 5, "include_base": false, "system_prompt": "Be brief."}"#, into: &json)
        let records = [e.evaluation, flags, json].map { Self.text($0.record([.answers])) }
        #expect(records[0] == records[1] && records[0] == records[2], "\(records)")
        #expect(e.evaluation.sampling == SamplingParameters(temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05, repetitionPenalty: 1.1))
        #expect(e.evaluation.samples == 7 && e.evaluation.maxNewTokens == 64 && e.evaluation.seed == 5 && e.evaluation.systemPrompt == "Be brief.")

        var g = GenerationSettings()
        try Self.fromFlags([("precision", .text("bf16")), ("weights", .text("mapped")), ("max-batch-sequences", .int(8))], into: &g)
        #expect(g.precision == .bf16 && g.weights == .mapped && g.maxBatchSequences == 8)
        #expect(Self.text(g.record([.answers, .none])) == Self.text(e.generation.record([.answers, .none])))

        // The experiment's fingerprint is these records, after the questions.
        let fields = try e.fingerprintFields().filter { $0.0.hasPrefix("evaluation.") || $0.0.hasPrefix("generation.") }
        #expect(Self.text(Array(fields.dropFirst())) == records[0] + Self.text(e.generation.record([.answers])))
    }

    @Test func judgingAndDetectionFromEverySourceAreTheSame() throws {
        let e = try Self.experiment("""
            judges: {models: ["openai:gpt-4.1-mini", "anthropic:claude-x"], max_in_flight: 3, timeout: 9, max_attempts: 2, min_numeric_mass: 0.5, numbers: digits, seed: 0, local_mode: greedy}
            detection: {preset: study, methods: [threshold, zscore], consensus: median, baseline: 4, rules: {zscore: {z: 2.5}}, resamples: 10, seed: 7, confidence: 0.9, scale: 10, lead: coherence, lag: hallucination, min_agreeing: 2, judge: "anthropic:claude-x", directions: {evil: down}}

            """)
        var js = JudgeSettings()
        try Self.fromFlags([("max-in-flight", .int(3)), ("timeout", .number(9)), ("max-attempts", .int(2)), ("min-mass", .number(0.5)),
                            ("numbers", .text("digits")), ("judge-seed", .int(0)), ("local-mode", .text("greedy"))], into: &js)
        var jjson = JudgeSettings()
        try Self.fromJSON(#"{"max_in_flight": 3, "timeout": 9, "max_attempts": 2, "min_numeric_mass": 0.5, "numbers": "digits", "seed": 0, "local_mode": "greedy"}"#, into: &jjson)
        let all: Set<SettingEffect> = [.verdicts, .none]
        #expect(Self.text(js.record(all)) == Self.text(e.judges.record(all)) && Self.text(jjson.record(all)) == Self.text(js.record(all)))
        #expect(e.judges.maxInFlight == 3 && e.judges.numbers == .digits && e.judges.seed == 0 && e.judges.localMode == .greedy(maxTokens: 8))

        var d = DetectionSettings()
        // Flags come in any order; the preset is read first all the same.
        try Self.fromFlags([("method", .text("threshold,zscore")), ("consensus", .text("median")), ("baseline", .int(4)),
                            ("rule", .list([.text("zscore.z=2.5")])), ("resamples", .int(10)), ("seed", .text("7")), ("confidence", .number(0.9)),
                            ("scale", .number(10)), ("lead", .text("coherence")), ("lag", .text("hallucination")), ("min-agreeing", .int(2)),
                            ("judge", .text("anthropic:claude-x")), ("signal-direction", .list([.text("evil=down")])), ("preset", .text("study"))], into: &d)
        var djson = DetectionSettings()
        try Self.fromJSON(#"{"preset": "study", "methods": ["threshold", "zscore"], "consensus": "median", "baseline": 4, "rules": {"zscore": {"z": 2.5}}, "#
                          + #""resamples": 10, "seed": 7, "confidence": 0.9, "scale": 10, "lead": "coherence", "lag": "hallucination", "min_agreeing": 2, "#
                          + #""judge": "anthropic:claude-x", "directions": {"evil": "down"}}"#, into: &djson)
        let records = [e.detection, d, djson].map { Self.text($0.record([.analysis])) }
        #expect(records[0] == records[1] && records[0] == records[2], "\(records)")
        #expect(e.detection.preset == .study && e.detection.methods == ["threshold", "zscore"] && e.detection.consensus == .median)
        #expect(e.detection.parameters == RuleParameters(byRule: ["zscore": ["z": .number(2.5)]], baseline: 4))
        #expect(e.detection.directions["evil"] == .down && e.detection.directions["coherence"] == .down)
    }

    /// A bad value gets the same words from every source, naming the setting as that source
    /// spells it.
    @Test(arguments: [
        ("evaluation", "top_p", "top-p", "0", "is 0.0; must be in (0, 1]"),
        ("evaluation", "samples", "samples", "0", "is 0; must be >= 1"),
        ("generation", "max_batch_sequences", "max-batch-sequences", "0", "is 0; must be >= 1"),
        ("generation", "weights", "weights", "\"disk\"", "expected auto, huge-pages or mapped, found "),
        ("judges", "min_numeric_mass", "min-mass", "2", "is 2.0; must be <= 1"),
        ("judges", "numbers", "numbers", "\"roman\"", "expected auto, whole or digits, found "),
        ("detection", "confidence", "confidence", "0.3", "is 0.3; must be in [0.5, 1)"),
        ("detection", "methods", "method", "[\"magic\"]", "`magic` is not an onset method"),
        ("detection", "min_agreeing", "min-agreeing", "9", "is 9; must be <= 6"),
    ])
    func oneMessageForEverySource(section: String, key: String, flag: String, value: String, words: String) throws {
        let yaml: String
        let body = section == "judges" ? "judges: {models: [\"openai:gpt-4.1-mini\"], \(key): \(value)}\n" : "\(section):\n  \(key): \(value)\n"
        do { _ = try Self.experiment(body); yaml = "accepted" } catch { yaml = "\(error)" }
        #expect(yaml.contains("\(section).\(key): ") && yaml.contains(words), "\(yaml)")

        let v: SettingValue = value.hasPrefix("\"") ? .text(String(value.dropFirst().dropLast()))
            : value.hasPrefix("[") ? .text(value.dropFirst().dropLast().replacingOccurrences(of: "\"", with: ""))
            : Int(value).map { .int($0) } ?? .number(Double(value)!)
        func message<G: SettingGroup>(_ g: G) -> String {
            var g = g
            do { try Self.fromFlags([(flag, v)], into: &g); return "accepted" } catch { return "\(error)" }
        }
        let flagged: String
        switch section {
        case "evaluation": flagged = message(EvaluationSettings())
        case "generation": flagged = message(GenerationSettings())
        case "judges": flagged = message(JudgeSettings())
        default: flagged = message(DetectionSettings())
        }
        #expect(flagged.hasPrefix("\(section).\(key): ") && flagged.contains(words), "\(flagged)")
    }

    /// One fingerprint covers every setting that changes results: each table key that changes
    /// the weights, the checkpoints written or the answers is a field of the experiment's
    /// fingerprint, and each detection key changes the analysis fingerprint.
    @Test func everySettingThatChangesResultsIsFingerprinted() throws {
        let e = try Self.experiment("")
        let fields = Set(try e.fingerprintFields().map(\.0))
        let stored: Set<SettingEffect> = [.weights, .outputs, .answers]
        func covered<G: SettingGroup>(_: G.Type) -> [String] {
            G.keys.filter { stored.contains($0.effect) && $0.sources.contains(.yaml) }.map { "\(G.section).\($0.yamlKey)" }
        }
        let needed = covered(TrainingOptions.self) + covered(EvaluationSettings.self) + covered(GenerationSettings.self)
        #expect(needed.count > 25)
        for f in needed { #expect(fields.contains(f), "\(f) is not in the fingerprint") }
        #expect(JudgeSettings.keys.allSatisfy { $0.effect == .verdicts || $0.effect == .none })

        // Each detection key, set away from its default, changes the analysis fingerprint.
        let samples: [String: String] = [
            "preset": "study", "methods": "[zscore]", "consensus": "median", "baseline": "4", "rules": "{zscore: {z: 2.5}}",
            "resamples": "10", "seed": "7", "confidence": "0.9", "scale": "10", "lead": "coherence", "lag": "hallucination",
            "min_agreeing": "2", "judge": "\"anthropic:claude-x\"", "directions": "{evil: down}", "adapter_dynamics": "false",
        ]
        let base = try e.legacyFingerprints().last!.1
        for key in DetectionSettings.keys {
            #expect(key.effect == .analysis)
            guard let value = samples[key.yamlKey] else { Issue.record("no sample value for detection.\(key.yamlKey)"); continue }
            let changed = try Self.experiment("detection: {\(key.yamlKey): \(value)}\n").legacyFingerprints().last!.1
            #expect(changed != base, "detection.\(key.yamlKey) leaves the analysis fingerprint unchanged")
        }
    }

    /// Settings of one backend given with the other are refused, naming the setting.
    @Test func generationSettingsBelongToTheirBackend() throws {
        do { _ = try Self.experiment("generation: {backend: vllm, url: \"http://h:8000/v1\", served_model: b, precision: bf16}\n"); Issue.record("accepted") } catch {
            #expect("\(error)".contains("generation.precision: applies to backend: local only"), "\(error)")
        }
        do { _ = try Self.experiment("generation: {max_in_flight: 4}\n"); Issue.record("accepted") } catch {
            #expect("\(error)".contains("generation.max_in_flight: applies to backend: vllm only"), "\(error)")
        }
        do { _ = try Self.experiment("generation: {url: \"http://h:8000/v1\"}\n"); Issue.record("accepted") } catch {
            #expect("\(error)".contains("generation.url: applies to backend: vllm only"), "\(error)")
        }
        var g = GenerationSettings()
        g.backend = .vllm(url: "http://h/v1", servedModel: "b")
        #expect(throws: SettingError.self) { try Self.fromFlags([("precision", .text("bf16"))], into: &g) }
        try Self.fromFlags([("server-max-in-flight", .int(4)), ("server-timeout", .number(5))], into: &g)
        #expect(g.maxInFlight == 4 && g.timeout == 5)
    }

    /// The commands read the same tables: a bad value is a usage error naming the flag.
    @Test func commandsNameTheirFlags() throws {
        let detect = try CLI.run(["detect", "--scores", "/nonexistent.jsonl", "--confidence", "0.3"])
        #expect(detect.status == 64 || detect.status == 2, "\(detect.status) \(detect.err)")
        #expect(detect.err.contains("--confidence is 0.3; must be in [0.5, 1)"), "\(detect.err)")
        let rule = try CLI.run(["detect", "--scores", "/nonexistent.jsonl", "--rule", "zscore.zz=3"])
        #expect(rule.err.contains("--rule zscore.zz: `zz` is not a parameter of zscore") || rule.err.contains("`zz` is not a parameter of zscore"), "\(rule.err)")
        let judge = try CLI.run(["judge", "--answers", "/nonexistent.jsonl", "--trait", "evil", "--judge", "openai:m", "--out", "/tmp/x.jsonl", "--min-mass", "2"])
        #expect(judge.err.contains("--min-mass is 2.0; must be <= 1"), "\(judge.err)")
        let generate = try CLI.run(["generate", "--model", "/nonexistent", "--prompt", "Hi", "--server", "http://127.0.0.1:9/v1", "--precision", "bf16"])
        #expect(generate.err.contains("--precision applies without --server only"), "\(generate.err)")
        let local = try CLI.run(["generate", "--model", "/nonexistent", "--prompt", "Hi", "--server-timeout", "5"])
        #expect(local.err.contains("--server-timeout applies with --server only"), "\(local.err)")
    }
}
