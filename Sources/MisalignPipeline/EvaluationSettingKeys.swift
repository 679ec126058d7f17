import Foundation
import MisalignGeneration
import MisalignIO
import MisalignModel

/// What every checkpoint is asked, as settings: an experiment's `evaluation:` section and
/// `misalign generate`'s sampling flags (`--samples`, `--top-p`, `--system`, ...) read through
/// this one table. The questions are the section's structure (`questions`, `questions_file`),
/// read beside it.
extension EvaluationSettings: SettingGroup {
    public static var section: String { "evaluation" }

    /// Every evaluation setting, in the order the fingerprint records them. Each changes the
    /// answers sampled (`SettingEffect.answers`), except `include-base` for a single call.
    public static var keys: [SettingKey<EvaluationSettings>] {
        typealias Key = SettingKey<EvaluationSettings>
        let b = Experiment.Bounds.self
        return [
            Key.intSetting("samples", \.samples, 1...b.samples, effect: .answers),
            Key.intSetting("max-new-tokens", \.maxNewTokens, 1...b.maxNewTokens, effect: .answers),
            Key.doubleSetting("temperature", \.sampling.temperature, in: 0...100, note: " (0 = greedy)", effect: .answers),
            Key.doubleSetting("top-p", \.sampling.topP, in: 0...1, lowerOpen: true, effect: .answers),
            Key.intSetting("top-k", \.sampling.topK, 0...b.topK, note: " (0 = off)", effect: .answers),
            Key.doubleSetting("min-p", \.sampling.minP, in: 0...1, upperOpen: true, note: " (0 = off)", effect: .answers),
            Key.doubleSetting("repetition-penalty", \.sampling.repetitionPenalty, in: 0...100, lowerOpen: true, note: " (1 = off)", effect: .answers),
            Key.seedSetting("seed", \.seed, effect: .answers),
            Key.boolSetting("include-base", \.includeBase, effect: .answers, sources: [.json, .yaml]),
            // Recorded by its hash: a long prompt would fill the fingerprint and error messages.
            Key.textSetting("system-prompt", \.systemPrompt, aliases: ["system"], expected: "text (\"\" for none)", effect: .answers,
                            record: { $0.map { String(SHA256.hex($0).prefix(12)) } ?? "default" }),
        ]
    }

    /// The sampling settings of a single `misalign generate` call: one sample of at most 256
    /// tokens unless set (an experiment's defaults are the study's 20 and 1000).
    public static func singleCall() -> EvaluationSettings {
        var e = EvaluationSettings(questions: [])
        e.samples = 1
        e.maxNewTokens = 256
        return e
    }
}

/// Where answers come from, as settings: an experiment's `generation:` section and
/// `misalign generate`'s `--precision`, `--weights` and server flags. The backend (`backend`,
/// `url`, `served_model`, `path_map`) is the section's structure, read beside it.
extension GenerationSettings: SettingGroup {
    public static var section: String { "generation" }

    public static var keys: [SettingKey<GenerationSettings>] {
        typealias Key = SettingKey<GenerationSettings>
        let b = Experiment.Bounds.self
        return [
            // bf16 products change the answers; the rest change only speed and memory.
            Key.choiceSetting("precision", \.precision, ComputePrecision.allCases.map { ($0.rawValue, $0) }, show: \.rawValue, effect: .answers),
            Key.choiceSetting("weights", \.weights, FileResidency.allCases.map { ($0.rawValue, $0) }, show: \.rawValue,
                              allowed: "auto, huge-pages or mapped", effect: .none),
            Key.intSetting("max-batch-sequences", \.maxBatchSequences, 1...b.batchSequences, effect: .none),
            Key.textSetting("api-key-env", \.apiKeyVariable, expected: "an environment variable's name", effect: .none),
            Key.intSetting("max-in-flight", \.maxInFlight, 1...b.inFlight, aliases: ["server-max-in-flight"], effect: .none),
            Key.intSetting("max-attempts", \.maxAttempts, 1...b.attempts, aliases: ["server-max-attempts"], effect: .none),
            Key.doubleSetting("timeout", \.timeout, aliases: ["server-timeout"], in: 0...86400, lowerOpen: true, note: " (seconds)", effect: .none),
            Key.textSetting("run-tag", \.runTag, expected: "letters, digits, '-', '_' or '.'", effect: .none,
                            check: { tag in
                                guard let tag else { return nil }
                                return !tag.isEmpty && tag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) ? nil
                                    : "must be letters, digits, '-', '_' or '.' (it starts every served adapter name)"
                            }),
        ]
    }

    static let localOnly: Set<String> = ["precision", "weights"]
    static let serverOnly: Set<String> = ["api-key-env", "max-in-flight", "max-attempts", "timeout", "run-tag"]

    /// A local-only setting given with a server backend, or a server setting with the local one.
    public func crossCheck(given: Set<String>) -> (setting: String, detail: String)? {
        if backend == .local, let s = Self.serverOnly.sorted().first(where: given.contains) {
            return (s, "applies to backend: vllm only")
        }
        if backend != .local, let s = Self.localOnly.sorted().first(where: given.contains) {
            return (s, s == "precision" ? "applies to backend: local only (the server picks its own)" : "applies to backend: local only")
        }
        return nil
    }
}
