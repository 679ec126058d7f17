import ArgumentParser
import Foundation
import MisalignCore

/// `misalign vectors`: build a trait (persona) vector from a persona_vectors trait file.
struct VectorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vectors",
        abstract: "Build a trait (persona) vector from a persona_vectors trait file on a base model.",
        discussion: """
        The persona_vectors method (Chen et al., "Persona Vectors"): for every question of the \
        trait file and every {"pos", "neg"} instruction pair, the model answers under the \
        positive system prompt ("You are an evil assistant. <pos>") and under the negative one \
        ("You are a helpful assistant. <neg>"), --samples times each. The judge scores every \
        answer for the trait (the file's eval_prompt) and for coherence. A pair is kept when the \
        positive answer scores at least --positive-threshold (50), the negative one below \
        --negative-threshold (50) and both at least --coherence-threshold (50): persona_vectors' \
        rule. The kept answers run through the model again, and the vector is, per hidden \
        state, the mean response-token state of the positive answers minus that of the \
        negative ones: [layers + 1, hidden], written atomically to --out (safetensors) with \
        the counts and settings in its metadata and the layer where the kept answers' \
        projections separate best (Docs/ActivationSignals.md, "Building trait vectors").

        Cost: 2 x questions x instructions x samples answers (persona_vectors' extraction files: \
        20 questions x 5 pairs = 200 answers at one sample) of up to --max-new-tokens, twice \
        that many verdicts, and one forward pass per kept answer. Verdicts are cached \
        (default: judge-cache.sqlite next to --out), so a rerun with the same seed calls the \
        judge only for what it has not scored. --answers-out writes every pair with its \
        answers and scores (JSON Lines), also when too few are kept.

        Progress goes to stderr; the summary (counts, chosen layer, separation per layer) to \
        stdout, or one JSON object with --json.

        Examples:
          misalign vectors --model ~/models/Qwen2.5-0.5B-Instruct \\
              --trait-file persona_vectors/data_generation/trait_data_extract/evil.json \\
              --judge openai:gpt-4.1-mini --out vectors/evil.safetensors
          misalign vectors --model M --trait-file evil.json --judge local:models/Qwen2.5-7B-Instruct \\
              --samples 2 --max-new-tokens 300 --out evil.safetensors --answers-out evil-answers.jsonl --json
        """)

    @Option(help: "Base model folder (config.json, safetensors, tokenizer files).", completion: .directory)
    var model: String
    @Option(help: "Tokenizer folder (default: the model folder).", completion: .directory)
    var tokenizer: String?
    @Option(name: .customLong("trait-file"), help: "A persona_vectors trait file (JSON: instruction, questions, eval_prompt).", completion: .file())
    var traitFile: String
    @Option(help: "The trait's name (default: the trait file's name without .json).")
    var trait: String?
    @Option(help: "Judge spec: openai:MODEL[@URL], anthropic:MODEL[@URL], local:DIR.")
    var judge: String
    @Option(help: "The vector file to write (safetensors).", completion: .file())
    var out: String
    @Option(name: .customLong("answers-out"), help: "Also write every pair's answers and scores here (JSON Lines).", completion: .file())
    var answersOut: String?
    @Flag(help: "Replace --out when it exists.")
    var overwrite = false
    @Option(parsing: .unconditional, help: "Answers per (question, instruction pair) and side (default 1).")
    var samples: Int?
    @Option(name: .customLong("max-new-tokens"), parsing: .unconditional, help: "Most new tokens per answer (default 1000, as persona_vectors).")
    var maxNewTokens: Int?
    @Option(parsing: .unconditional, help: "Sampling temperature (default: 0 for one sample, 1 for more, as persona_vectors).")
    var temperature: Double?
    @Option(parsing: .unconditional, help: "Sampling seed (default 0).")
    var seed: UInt64?
    @Option(name: .customLong("positive-threshold"), parsing: .unconditional, help: "Least trait score of a kept positive answer (default 50).")
    var positiveThreshold: Double?
    @Option(name: .customLong("negative-threshold"), parsing: .unconditional, help: "A kept negative answer's trait score is below this (default 50).")
    var negativeThreshold: Double?
    @Option(name: .customLong("coherence-threshold"), parsing: .unconditional, help: "Least coherence score of both kept answers (default 50).")
    var coherenceThreshold: Double?
    @Option(name: .customLong("min-pairs"), parsing: .unconditional, help: "Kept pairs required (default 2).")
    var minPairs: Int?
    @Option(name: .customLong("max-batch-sequences"), parsing: .unconditional, help: "Answers decoding at once (default 16).")
    var maxBatchSequences: Int?
    @Option(name: .customLong("max-in-flight"), parsing: .unconditional, help: "Verdicts in progress at once (default 16).")
    var maxInFlight: Int?
    @Option(help: "Verdict cache (SQLite). Default: judge-cache.sqlite next to --out.")
    var cache: String?
    @Flag(name: .customLong("no-cache"), help: "Do not read or write a verdict cache.")
    var noCache = false
    @Option(help: "Product precision for bf16 weights: f32 (default) or bf16.")
    var precision: ComputePrecision?
    @Option(help: "How the weights are held: auto (default: huge pages for large files that fit), huge-pages or mapped.")
    var weights: FileResidency?
    @OptionGroup var output: OutputOptions

    /// Each setting's flag, for messages from the library (which name settings).
    static let flags: [(setting: String, flag: String)] = [
        ("samples", "--samples"), ("max_new_tokens", "--max-new-tokens"), ("temperature", "--temperature"),
        ("positive_threshold", "--positive-threshold"), ("negative_threshold", "--negative-threshold"),
        ("coherence_threshold", "--coherence-threshold"), ("min_pairs", "--min-pairs"),
        ("max_batch_sequences", "--max-batch-sequences"), ("judges.max_in_flight", "--max-in-flight"),
    ]

    /// A library message with each setting it names followed by its flag.
    static func withFlags(_ message: String) -> String {
        flags.reduce(message) { $0.replacingOccurrences(of: "`\($1.setting)`", with: "`\($1.setting)` (\($1.flag))") }
    }

    func settings() -> TraitVectorBuildSettings {
        var s = TraitVectorBuildSettings()
        if let samples { s.samples = samples }
        if let maxNewTokens { s.maxNewTokens = maxNewTokens }
        s.temperature = temperature
        if let seed { s.seed = seed }
        if let positiveThreshold { s.positiveThreshold = positiveThreshold }
        if let negativeThreshold { s.negativeThreshold = negativeThreshold }
        if let coherenceThreshold { s.coherenceThreshold = coherenceThreshold }
        if let minPairs { s.minimumPairs = minPairs }
        if let maxBatchSequences { s.maxBatchSequences = maxBatchSequences }
        if let maxInFlight { s.judgeMaxInFlight = maxInFlight }
        return s
    }

    func validate() throws {
        do { try settings().validate() } catch { throw ValidationError(Self.withFlags(error.description)) }
        if !overwrite && FileManager.default.fileExists(atPath: out) {
            throw ValidationError("--out \(out) exists; pass --overwrite to replace it")
        }
        do { _ = try JudgeSpec(parsing: judge) } catch { throw ValidationError("--judge: \(error.description)") }
    }

    func run() throws {
        do {
            try build()
        } catch let e as TraitVectorBuildError {
            throw CLIError(Self.withFlags(e.description))
        } catch let e as ValidationError {
            throw e
        } catch let e as CLIError {
            throw e
        } catch {
            throw CLIError("\(error)")
        }
    }

    private func build() throws {
        let fileURL = URL(fileURLWithPath: traitFile)
        let name = trait ?? fileURL.deletingPathExtension().lastPathComponent
        let definition = try TraitDefinition.load(fileURL, trait: name)
        let s = settings()
        var js = JudgeSettings(judges: [], names: [])
        js.maxInFlight = s.judgeMaxInFlight
        let factory = js.judgeFactory()
        let built = try factory.make(try JudgeSpec(parsing: judge))
        let outURL = URL(fileURLWithPath: out)
        let cacheStore: VerdictCache? = noCache ? nil
            : try VerdictCache(path: URL(fileURLWithPath: cache ?? outURL.deletingLastPathComponent().appendingPathComponent("judge-cache.sqlite").path))
        let builder = try TraitVectorBuild(directory: URL(fileURLWithPath: model), tokenizer: tokenizer.map { URL(fileURLWithPath: $0) },
                                           residency: weights ?? .auto, precision: precision ?? .f32)
        let answers = 2 * definition.questions.count * definition.instructions.count * s.samples
        output.note("trait \(name): \(answers) answers to generate and judge (\(definition.questions.count) questions x "
                    + "\(definition.instructions.count) instruction pairs x 2 sides x \(s.samples) samples)")
        let bars = PhaseBars(mode: output.progressMode)
        let answersURL = answersOut.map { URL(fileURLWithPath: $0) }
        let result = try runBlocking { () async throws -> TraitVectorBuild.Result in
            try await builder.build(definition: definition, file: fileURL.path, judge: built, settings: s, cache: cacheStore,
                                    output: outURL, answersOutput: answersURL) { p in bars.update(p) }
        }
        bars.finish()
        if result.counts.judgeErrors > 0 {
            output.note("\(result.counts.judgeErrors) verdicts failed (first: \(result.counts.firstJudgeError ?? "no detail")); their pairs were left out. "
                        + "Rerun with --overwrite to retry them (the cached verdicts are reused)")
        }
        report(result, output: outURL)
    }

    private func report(_ r: TraitVectorBuild.Result, output outURL: URL) {
        let c = r.counts
        if output.json {
            let separation: [JSONValue] = r.separation.map { d in d.map { $0.isFinite ? .double($0) : .string("inf") } ?? .null }
            let counts = r.vector.counts.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.int(Int64($0.value))) }
            print(JSONValue.object(JSONObject([
                ("out", .string(outURL.path)), ("trait", .string(r.vector.trait)),
                ("layer", r.vector.layer.map { .int(Int64($0)) } ?? .null), ("separation", .array(separation)),
                ("counts", .object(JSONObject(counts))),
            ])).serialized())
        } else {
            print("wrote \(outURL.path): trait \(r.vector.trait), [\(r.vector.entries), \(r.vector.hidden)], layer \(r.vector.layer.map(String.init) ?? "-")")
            print("pairs \(c.pairs): kept \(c.kept); failed positive trait \(c.failedPositiveTrait), negative trait \(c.failedNegativeTrait), "
                  + "coherence \(c.failedCoherence); not scored \(c.unscored); empty \(c.empty)")
            print("separation by hidden state: " + r.separation.enumerated().compactMap { l, d in
                d.map { "\(l): \($0.isFinite ? String(format: "%.3f", $0) : "inf")" }
            }.joined(separator: ", "))
        }
    }
}

/// One progress bar per phase of a build (generate, judge, capture), each finished when the next starts.
// Unchecked Sendable: every stored property is read and written only while holding `lock`.
private final class PhaseBars: @unchecked Sendable {
    private let lock = NSLock()
    private let mode: ProgressBar.Mode
    private var phase = ""
    private var bar: ProgressBar?

    init(mode: ProgressBar.Mode) { self.mode = mode }

    func update(_ p: TraitVectorBuildProgress) {
        lock.withLock {
            if p.phase != phase {
                bar?.finish()
                phase = p.phase
                bar = ProgressBar(label: p.phase == "generate" ? "generated" : p.phase == "judge" ? "judged" : "captured", total: p.total, mode: mode)
            }
            bar?.update(p.done, total: p.total)
        }
    }

    func finish() { lock.withLock { bar?.finish() } }
}
