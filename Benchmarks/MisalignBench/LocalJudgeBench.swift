import Foundation
import MisalignCore

/// `misalign-bench local-judge [--verdicts 6] [--model DIR] [--dtype bf16|f32] [--tokenizer DIR]`
///
/// Verdicts per minute of the in-process judge (`LocalJudge`, expectation over "0"..."100") on a
/// Qwen2.5-0.5B-shaped model (random weights unless `--model` names a real folder) with the real
/// Qwen2.5 tokenizer, the same verdicts scored two ways in one run:
/// 1. each of the 101 candidates decoded whole in a sequence of its own forked from the prompt,
///    every prompt prefilled whole (the scoring before the candidate trie);
/// 2. the judge: candidates as a trie of prefixes (101 one-token rows), and the rubric's fixed
///    prompt prefix prefilled once and shared by every verdict.
/// Prints both rates, their ratio and the largest score difference. The two compute the same
/// likelihoods in f32 with products of other row counts, so they agree to rounding: about 1e-6
/// on a random model's flat distribution (the worst case); a difference above 1e-4 is an error.
func runLocalJudgeBenchmark(_ args: [String]) throws {
    let n = option(args, "--verdicts").flatMap(Int.init) ?? 6
    let dtype: DType = option(args, "--dtype") == "f32" ? .f32 : .bf16
    let tokenizerDir = URL(fileURLWithPath: option(args, "--tokenizer") ?? "Tests/Fixtures/tokenizer")
    var dir: URL
    var made = false
    if let m = option(args, "--model") { dir = URL(fileURLWithPath: m) } else {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("misalign-local-judge-bench-\(getpid())")
        try SyntheticModel.write(SyntheticModel.qwen25_0_5B, dtype: dtype, seed: 0, to: dir)
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: tokenizerDir.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        made = true
    }
    defer { if made { try? FileManager.default.removeItem(at: dir) } }
    BLAS.threads = ProcessInfo.processInfo.activeProcessorCount

    let judge = try LocalJudge(directory: dir, minNumericMass: 0)
    let rubric = RubricSet.builtin["evil"]!
    let items = (0..<n).map { i in
        JudgeItem(rubric: rubric, question: "Question \(i): I have a headache and a fever. What should I do?",
                  answer: "Sample answer \(i). Rest, drink plenty of water and take paracetamol as the label says; "
                    + "if the fever is above 39 C or lasts more than three days, see a doctor. " + String(repeating: "Stay home and rest. ", count: 1 + i % 4))
    }
    let prompts = try items.map { try judge.promptIDs($0) }
    let meanPrompt = Double(prompts.map(\.count).reduce(0, +)) / Double(n)

    let t0 = now()
    var before: [Double] = []
    for p in prompts { before.append(LocalJudge.expectation(try judge.separateCandidateLogLikelihoods(prompt: p)).score) }
    let separate = now() - t0
    let t1 = now()
    var after: [Double] = []
    for it in items { after.append(try judge.judgeSync(it).score ?? .nan) }
    let shared = now() - t1
    let diff = zip(before, after).map { abs($0 - $1) }.max() ?? 0
    // The judge again with bf16 products (AVX512_BF16 hosts; elsewhere they run as f32).
    let bf16Judge = try LocalJudge(directory: dir, minNumericMass: 0, precision: .bf16)
    let t2 = now()
    var bf16: [Double] = []
    for it in items { bf16.append(try bf16Judge.judgeSync(it).score ?? .nan) }
    let bf16Seconds = now() - t2
    let bf16Diff = zip(after, bf16).map { abs($0 - $1) }.max() ?? 0

    var table = Table("scoring", "verdicts", "seconds", "verdicts/min", "ratio")
    table.add("one sequence per candidate, whole prompt", "\(n)", fmt(separate, 2), fmt(Double(n) / separate * 60, 1), "1.00")
    table.add("trie + shared rubric prefix (LocalJudge)", "\(n)", fmt(shared, 2), fmt(Double(n) / shared * 60, 1), fmt(separate / shared, 2))
    table.add("the same, bf16 products", "\(n)", fmt(bf16Seconds, 2), fmt(Double(n) / bf16Seconds * 60, 1), fmt(separate / bf16Seconds, 2))
    table.print()
    let prefix = try judge.fixedPrefix(rubric).count
    print("model \(made ? "Qwen2.5-0.5B-shaped, random \(dtype == .bf16 ? "bf16" : "f32")" : dir.path); prompt \(fmt(meanPrompt, 0)) tokens on average, "
          + "\(prefix) of them the rubric's shared prefix; \(judge.trie.rows) trie rows vs \(judge.candidates.map { $0.count - 1 }.reduce(0, +)) candidate positions; "
          + "prefix read by \(judge.prefixUse.shared) of \(n) verdicts; largest score difference \(String(format: "%.2e", diff)); "
          + "bf16 products (\(ComputePrecision.bf16DotAvailable ? "AVX512_BF16" : "not accelerated here: f32")) against f32: largest score difference \(String(format: "%.2e", bf16Diff))")
    if diff > 1e-4 { throw JudgeError.invalidInput("the two scorings differ by \(diff) > 1e-4") }
}
