// Example: evaluate an external folder of PEFT checkpoints (e.g. saved by Hugging Face's
// Trainer) with library calls only: sample answers at every checkpoint, judge them, and find
// where each signal starts to rise.
//
//   swift run -c release EvaluateCheckpoints --model ~/models/Qwen2.5-0.5B-Instruct \
//       --checkpoints runs/medical-s0 --judge openai:gpt-4.1-mini \
//       [--trait evil --trait hallucination] [--questions 4] [--samples 3] [--max-new-tokens 64] \
//       [--tokenizer DIR] [--cache judge-cache.sqlite] [--resamples 200] [--seed 0]
//
// The base model (no adapter) is evaluated as step 0. API judges read OPENAI_API_KEY /
// ANTHROPIC_API_KEY from the environment; `local:DIR` judges run in-process.
import Foundation
import MisalignCore

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    exit(1)
}

// Minimal flag parsing: --name value, --trait repeatable.
var options: [String: String] = [:]
var traits: [String] = []
var args = CommandLine.arguments.dropFirst()
while let flag = args.popFirst() {
    guard flag.hasPrefix("--"), let value = args.popFirst() else { fail("expected --flag value pairs, got '\(flag)'") }
    if flag == "--trait" { traits.append(value) } else { options[String(flag.dropFirst(2))] = value }
}
guard let modelPath = options["model"], let checkpointsPath = options["checkpoints"], let judgeSpec = options["judge"] else {
    fail("usage: EvaluateCheckpoints --model DIR --checkpoints DIR --judge SPEC [--trait NAME]... (see the header of main.swift)")
}
@MainActor func intOption(_ name: String, _ fallback: Int) -> Int {
    guard let text = options[name] else { return fallback }
    guard let v = Int(text), v >= 0 else { fail("--\(name) must be a non-negative integer, got '\(text)'") }
    return v
}
if traits.isEmpty { traits = ["evil", "hallucination"] }
let questionCount = intOption("questions", 4), samples = max(1, intOption("samples", 3))
let maxNewTokens = max(1, intOption("max-new-tokens", 64)), resamples = intOption("resamples", 200)
let seed = UInt64(intOption("seed", 0))

do {
    // 1. The base model, loaded once (into huge pages where it fits, which decodes faster:
    //    FileResidency); adapters are swapped in beside it per checkpoint.
    let modelURL = URL(fileURLWithPath: modelPath)
    let model = try Qwen2Model(directory: modelURL, residency: .auto)
    let tokenizer = try BPETokenizer(directory: URL(fileURLWithPath: options["tokenizer"] ?? modelPath))
    let generator = LocalGenerator(model: model, tokenizer: tokenizer)
    let checkpoints = try CheckpointDirectory.list(in: URL(fileURLWithPath: checkpointsPath)).sorted { $0.step < $1.step }
    guard !checkpoints.isEmpty else { fail("no checkpoint-<step> folders in \(checkpointsPath)") }
    let questions = Array(EvaluationQuestions.general.prefix(max(1, questionCount)))

    // 2. Answers at step 0 (base model) and at every checkpoint.
    var answers: [AnswerRecord] = []
    var origin: [String: (step: Int, question: String, sample: Int)] = [:]
    let stages: [(step: Int, adapter: URL?)] = (checkpoints.first?.step == 0 ? [] : [(0, nil)]) + checkpoints.map { ($0.step, $0.directory) }
    for stage in stages {
        try model.setAdapter(try stage.adapter.map { try LoRAAdapter(directory: $0) })
        let requests = try questions.map { q in
            GenerationRequest(prompt: try tokenizer.applyChatTemplate([ChatMessage(role: "user", content: q.text)],
                                                                      addGenerationPrompt: true).ids.map { Int32($0) },
                              samples: samples, maxNewTokens: maxNewTokens, sampling: SamplingParameters(temperature: 1), seed: seed)
        }
        for c in try generator.generateSync(requests) {
            let q = questions[c.request]
            let id = "step\(stage.step)-\(q.id)-s\(c.sample)"
            answers.append(AnswerRecord(id: id, questionID: q.id, question: q.text, answer: c.text))
            origin[id] = (stage.step, q.id, c.sample)
        }
        FileHandle.standardError.write(Data("step \(stage.step): \(requests.count * samples) answers\n".utf8))
    }
    try model.setAdapter(nil)

    // 3. Judge every answer for every trait (cached when --cache is given).
    let judge = try JudgeFactory().make(try JudgeSpec(parsing: judgeSpec))
    let rubrics = try traits.map { (t) throws(JudgeError) -> Rubric in try RubricSet.builtin.require(t) }
    let cache = try options["cache"].map { (p) throws(JudgeError) -> VerdictCache in try VerdictCache(path: URL(fileURLWithPath: p)) }
    let runner = JudgeRunner(judges: [judge], rubrics: rubrics, cache: cache)
    let answersToJudge = answers
    let summary = try runBlocking { () async throws(JudgeError) -> JudgeRunner.Summary in
        try await runner.run(answers: answersToJudge, output: nil)
    }
    let scores: [ScoreRecord] = summary.rows.compactMap { row in
        guard let s = row.verdict.score, let w = origin[row.answerID] else { return nil }
        return ScoreRecord(signal: row.trait, step: w.step, questionID: w.question, sample: w.sample, score: s)
    }
    let unscored = summary.rows.count - scores.count
    if unscored > 0 { FileHandle.standardError.write(Data("\(unscored) verdicts without a score (refusals, errors...)\n".utf8)) }

    // 4. Mean score per checkpoint and trait.
    print("step    " + traits.map { $0.padding(toLength: 15, withPad: " ", startingAt: 0) }.joined())
    for stage in stages {
        var line = String(stage.step).padding(toLength: 8, withPad: " ", startingAt: 0)
        for t in traits {
            let v = scores.filter { $0.signal == t && $0.step == stage.step }.map(\.score)
            line += (v.isEmpty ? "-" : String(format: "%.1f", v.reduce(0, +) / Double(v.count))).padding(toLength: 15, withPad: " ", startingAt: 0)
        }
        print(line)
    }

    // 5. Onsets. Few checkpoints support only the short rules; the baseline rules need 10+.
    let signals = traits.filter { t in scores.contains { $0.signal == t } }.map { SignalSpec($0, $0 == "coherence" ? .down : .up) }
    let rules: [any OnsetRule] = stages.count >= 14 ? OnsetConfig.defaultRules()
        : [ThresholdRule(threshold: 50, consecutive: 2), MovingAverageRiseRule(width: 2, patience: 1, minRise: 5), MeanShiftRule(minShift: 2)]
    let config = OnsetConfig(rules: rules, signals: signals, resamples: resamples, seed: seed)
    print("\nonsets (optimizer steps; rules: \(rules.map(\.name).joined(separator: ", ")))")
    do {
        let report = try OnsetAnalysis.analyze(records: scores, config: config)[0]
        for s in report.signals {
            let methods = s.methods.map { "\($0.method) \($0.step.map(String.init) ?? "-")" }.joined(separator: ", ")
            print("\(s.signal): consensus \(s.consensusStep.map { String(format: "%.1f", $0) } ?? "none") (\(methods))")
        }
        if let lag = report.lagSteps { print(String(format: "lag evil - hallucination: %.1f steps", lag)) }
    } catch {
        print("no onset analysis: \(error)")
    }
} catch {
    fail("\(error)")
}
