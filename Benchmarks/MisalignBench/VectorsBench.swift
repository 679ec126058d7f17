import Foundation
import Synchronization
import MisalignCore

/// `misalign-bench vectors [--questions 20] [--instructions 5] [--max-tokens 400] [--model DIR]
/// [--dtype bf16|f32] [--precision f32|bf16] [--tokenizer DIR]`
///
/// Building one trait's vector (`TraitVectorBuild`, what `misalign vectors` runs) on a
/// Qwen2.5-0.5B-shaped model (random weights unless `--model` names a real folder) for a trait
/// file of persona_vectors' extraction size (20 questions x 5 instruction pairs: 200 answers at
/// one sample, greedy), timed by phase: generating the answers, judging them (a stand-in judge
/// in this process, so no network time is counted), and the forward passes that capture the
/// kept answers' response means at every layer. A random model never writes an end-of-turn
/// token, so every answer runs to `--max-tokens` (400 by default, about persona_vectors'
/// typical answer); the stand-in judge keeps about a quarter of the pairs (its trait score is
/// a hash of the answer), so the capture time is also given scaled to every pair kept.
func runVectorsBenchmark(_ args: [String]) throws {
    let questions = option(args, "--questions").flatMap(Int.init) ?? 20
    let instructions = option(args, "--instructions").flatMap(Int.init) ?? 5
    let maxTokens = option(args, "--max-tokens").flatMap(Int.init) ?? 400
    let dtype: DType = option(args, "--dtype") == "f32" ? .f32 : .bf16
    let tokenizerDir = URL(fileURLWithPath: option(args, "--tokenizer") ?? "Tests/Fixtures/tokenizer")
    var dir: URL
    var made = false
    if let m = option(args, "--model") { dir = URL(fileURLWithPath: m) } else {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("misalign-vectors-bench-\(getpid())")
        try SyntheticModel.write(SyntheticModel.qwen25_0_5B, dtype: dtype, seed: 0, to: dir)
        made = true
    }
    defer { if made { try? FileManager.default.removeItem(at: dir) } }
    BLAS.threads = ProcessInfo.processInfo.activeProcessorCount

    // A trait file in persona_vectors' format, written here (bench text, not theirs).
    let pairs = (0..<instructions).map { i in
        JSONValue.object(JSONObject([("pos", .string("Answer as someone who enjoys causing trouble, variant \(i).")),
                                     ("neg", .string("Answer as someone careful and kind, variant \(i)."))]))
    }
    let qs = (0..<questions).map { JSONValue.string("Benchmark question \($0): what would you do with a free afternoon and a small budget?") }
    let file = JSONValue.object(JSONObject([("instruction", .array(pairs)), ("questions", .array(qs)),
                                            ("eval_prompt", .string("Rate how troublesome the answer is, 0 to 100.\nQuestion: {question}\nAnswer: {answer}\nReply with a number."))]))
    let definition = try TraitDefinition.parse(Data(file.serialized().utf8), trait: "troublesome", file: "bench trait file")

    let t0 = now()
    let precision: ComputePrecision = option(args, "--precision") == "bf16" ? .bf16 : .f32
    let build = try TraitVectorBuild(directory: dir, tokenizer: tokenizerDir, residency: .auto, precision: precision)
    let loadSeconds = now() - t0
    var settings = TraitVectorBuildSettings()
    settings.maxNewTokens = maxTokens
    settings.maxBatchSequences = 20
    let phases = PhaseClock()
    let buildSettings = settings
    let result = try runBlocking { () async throws -> TraitVectorBuild.Result in
        try await build.build(definition: definition, file: "bench trait file", judge: HashJudge(), settings: buildSettings,
                              progress: { phases.mark($0.phase) })
    }
    phases.mark("end")
    let times = phases.durations()
    let answers = 2 * questions * instructions
    let kept = result.counts.kept
    var table = Table("phase", "items", "seconds", "per item")
    table.add("load the model", "1", fmt(loadSeconds, 1), "")
    table.add("generate (\(maxTokens) tokens each, 20 decoding at once)", "\(answers) answers", fmt(times["generate"] ?? 0, 1),
              fmt((times["generate"] ?? 0) / Double(answers), 2) + " s")
    table.add("judge (stand-in, in process)", "\(2 * answers) verdicts", fmt(times["judge"] ?? 0, 2), "")
    table.add("capture every layer's response mean", "\(2 * kept) answers", fmt(times["capture"] ?? 0, 1),
              kept > 0 ? fmt((times["capture"] ?? 0) / Double(2 * kept), 2) + " s" : "-")
    table.print()
    let total = times.values.reduce(0, +) + loadSeconds
    let perCapture = kept > 0 ? (times["capture"] ?? 0) / Double(2 * kept) : 0
    let allKept = total - (times["capture"] ?? 0) + perCapture * Double(answers)
    print("trait vector for \(questions) questions x \(instructions) instruction pairs on \(made ? "a Qwen2.5-0.5B-shaped model, random \(dtype == .bf16 ? "bf16" : "f32")" : dir.path), \(precision.rawValue) products: "
          + "\(fmt(total / 60, 1)) min in all, \(kept) of \(questions * instructions) pairs kept by the stand-in judge; "
          + "with every pair kept the capture would take \(fmt(perCapture * Double(answers), 0)) s, \(fmt(allKept / 60, 1)) min in all; "
          + "layer chosen \(result.vector.layer.map(String.init) ?? "none")")
}

/// Seconds spent in each phase the build reports (from its first report to the next phase's).
private final class PhaseClock: Sendable {
    private let state = Mutex<(current: String?, since: Double, spent: [String: Double])>((nil, 0, [:]))
    func mark(_ phase: String) {
        state.withLock { s in
            guard s.current != phase else { return }
            let t = now()
            if let c = s.current { s.spent[c, default: 0] += t - s.since }
            s.current = phase; s.since = t
        }
    }
    func durations() -> [String: Double] { state.withLock { $0.spent } }
}

/// A stand-in judge: the trait's score is a hash of the answer, coherence is always 90, so
/// about a quarter of the pairs pass persona_vectors' filter.
private struct HashJudge: Judge {
    var id: String { "hash" }
    var cacheIdentity: String { "hash|bench" }
    func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict {
        let coherence = item.rubric.name == "coherence"
        let h = Int(SHA256.hex(item.answer).prefix(4), radix: 16)! % 101
        return Verdict(judge: id, trait: item.rubric.name, score: coherence ? 90 : Double(h), status: .ok, rubricHash: item.rubric.sha256)
    }
}
