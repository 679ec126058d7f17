import Foundation
import MisalignCore

/// `misalign-bench local-judge [--verdicts 6] [--model DIR] [--dtype bf16|f32] [--tokenizer DIR]`
///
/// Verdicts per minute of the in-process judge (`LocalJudge`, expectation over "0"..."100") on a
/// Qwen2.5-0.5B-shaped model (random weights unless `--model` names a real folder) with the real
/// Qwen2.5 tokenizer, the same verdicts scored several ways in one run:
/// 1. each of the 101 candidates decoded whole in a sequence of its own forked from the prompt,
///    every prompt prefilled whole (the scoring before the candidate trie);
/// 2. candidates as a trie of prefixes (101 one-token rows), and the rubric's fixed prompt prefix
///    prefilled once and shared by every verdict, one verdict at a time;
/// 3. the same with the verdicts batched (`LocalJudge` as concurrent `judge` calls get it): the
///    prompts prefilled together, the trie rows of all verdicts together;
/// 4. and 5. the last two with bf16 products.
/// Prints the rates, their ratio to the first and the largest score differences. The scorings
/// compute the same likelihoods in f32 with products of other row counts, so they agree to
/// rounding: about 1e-6 on a random model's flat distribution (the worst case); a difference
/// above 1e-4 is an error.
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
    // The judge, one verdict at a time and then all of them as one batch (`judgeSync(items)`,
    // what concurrent `judge` calls get), with f32 and then bf16 products; a fresh judge each
    // time, so each prefills the rubric's prefix once.
    func timed(_ precision: ComputePrecision, batched: Bool) throws -> (seconds: Double, scores: [Double], judge: LocalJudge) {
        let j = try LocalJudge(directory: dir, minNumericMass: 0, precision: precision)
        let t = now()
        let verdicts = batched ? try j.judgeSync(items).map { try $0.get() } : try items.map { try j.judgeSync($0) }
        return (now() - t, verdicts.map { $0.score ?? .nan }, j)
    }
    let one = try timed(.f32, batched: false), batch = try timed(.f32, batched: true)
    let oneBF16 = try timed(.bf16, batched: false), batchBF16 = try timed(.bf16, batched: true)
    func largest(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }
    let diff = largest(before, one.scores), batchDiff = largest(one.scores, batch.scores)
    let bf16Diff = largest(one.scores, oneBF16.scores), bf16BatchDiff = largest(oneBF16.scores, batchBF16.scores)

    var table = Table("scoring", "verdicts", "seconds", "verdicts/min", "ratio")
    table.add("one sequence per candidate, whole prompt", "\(n)", fmt(separate, 2), fmt(Double(n) / separate * 60, 1), "1.00")
    for (name, r) in [("trie + shared rubric prefix, one verdict at a time", one), ("the same, verdicts batched (LocalJudge)", batch),
                      ("trie + prefix, bf16 products, one at a time", oneBF16), ("the same, verdicts batched", batchBF16)] {
        table.add(name, "\(n)", fmt(r.seconds, 2), fmt(Double(n) / r.seconds * 60, 1), fmt(separate / r.seconds, 2))
    }
    table.print()
    let prefix = try judge.fixedPrefix(rubric).count
    let positions = judge.candidates.map { $0.count - 1 }.reduce(0, +)
    let model = made ? "Qwen2.5-0.5B-shaped, random \(dtype == .bf16 ? "bf16" : "f32")" : dir.path
    let bf16Kind = ComputePrecision.bf16DotAvailable ? "AVX512_BF16" : "not accelerated here: f32"
    func e(_ x: Double) -> String { String(format: "%.2e", x) }
    print("model \(model); prompt \(fmt(meanPrompt, 0)) tokens on average, \(prefix) of them the rubric's shared prefix; "
          + "\(judge.trie.rows) trie rows vs \(positions) candidate positions; prefix read by \(one.judge.prefixUse.shared) of \(n) verdicts")
    print("largest score differences: trie vs separate \(e(diff)); batched vs one at a time \(e(batchDiff)) (bf16 products: \(e(bf16BatchDiff))); "
          + "bf16 products (\(bf16Kind)) vs f32 \(e(bf16Diff))")
    if max(diff, batchDiff) > 1e-4 { throw JudgeError.invalidInput("the scorings differ by \(max(diff, batchDiff)) > 1e-4") }
}
