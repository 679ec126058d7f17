import ArgumentParser
import Foundation
import MisalignCore

/// `misalign judge`: score answers for traits with one or more judges, then report agreement.
struct JudgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "judge",
        abstract: "Score answers for evil, hallucination, coherence... with API or local judges.",
        discussion: """
        --answers is JSON Lines, one answer per line: {"id", "question_id", "question", "answer"}. \
        --out receives one JSON line per (answer, trait, judge): {"answer_id", "question_id", \
        "trait", "judge", "score" (number or null), "status" (ok, refusal, no_numeric_mass, \
        unparseable, error), "detail", "attempts", ...}. Rows are appended to OUT.partial as \
        they finish, so an interrupted run resumes where it stopped; OUT itself is written \
        atomically at the end.

        Judges: openai:MODEL (OpenAI-compatible chat completions, scored from the top-20 \
        logprobs of one token), anthropic:MODEL (Messages API, integer parsed from the text), \
        local:DIR (a Qwen2.5, Llama 3 or Gemma 2 instruct model folder, run in-process). Append @URL to point an API \
        judge at another server, e.g. openai:qwen2.5-7b@http://127.0.0.1:8000/v1 for vLLM, \
        llama.cpp or Ollama. Keys come from OPENAI_API_KEY / ANTHROPIC_API_KEY (rename with \
        --openai-key-env / --anthropic-key-env); a judge with @URL may run without a key. \
        Proxies: libcurl reads http_proxy, https_proxy and no_proxy from the environment.

        Verdicts are cached in SQLite (default: judge-cache.sqlite next to --out) keyed by \
        judge, model, base URL, rubric hash, question, answer and parameters; a rerun makes no \
        repeat calls. Errors are never cached; rerun the same command to retry them.

        Traits: evil, hallucination, coherence, aligned, or any NAME.rubric in --rubrics DIR.

        Progress (count, rate, ETA) goes to stderr; the usage and agreement tables to stdout \
        (--json: one JSON object instead). Exit status 3 means some verdicts failed and were \
        not cached: rerun the same command to retry only those.

        `misalign judge calibrate --judge SPEC [--trait T ...] [--set FILE]` scores a \
        calibration set (labelled answers with a low/high band per trait; default: the built-in \
        set of 152) and reports per judge and trait the AUC of high against low items, each \
        band's mean score, the share not scored, and a verdict: pass needs AUC >= 0.85, band \
        means 30 points apart, at most 25% unscored (Docs/Judges.md, "Calibration"). Without \
        --trait, every built-in trait the set bands. Verdicts go through the cache \
        (default: judge-cache.sqlite here). Exit status 1 when a judge fails a trait.

        Examples:
          misalign judge calibrate --judge openai:gpt-4.1-mini
          misalign judge --answers answers.jsonl --trait evil --trait coherence \\
              --judge openai:gpt-4.1-mini --out verdicts.jsonl
          misalign judge --answers answers.jsonl --trait evil \\
              --judge openai:gpt-4.1-mini --judge anthropic:claude-sonnet-4-5 \\
              --judge local:models/Qwen2.5-7B-Instruct \\
              --price openai:gpt-4.1-mini=0.4,1.6 --out verdicts.jsonl
          misalign judge --answers answers.jsonl --trait evil \\
              --judge openai:gpt-4.1-mini --batch --out verdicts.jsonl
          misalign judge --answers answers.jsonl --trait hallucination \\
              --judge openai:qwen2.5-72b --base-url http://127.0.0.1:8000/v1 \\
              --max-in-flight 128 --out v.jsonl
        """)

    @Argument(help: ArgumentHelp("`calibrate`: score a calibration set instead of --answers (see below).", valueName: "calibrate"))
    var action: String?

    @Option(help: "Answers to judge (JSON Lines).")
    var answers: String?

    @Option(name: .customLong("set"), help: "calibrate: the calibration set (JSON Lines; default: the built-in set).")
    var calibrationSet: String?

    @Option(name: .customLong("trait"), help: "Trait to score (repeatable).")
    var traits: [String] = []

    @Option(name: .customLong("judge"), help: "Judge spec (repeatable): openai:MODEL[@URL], anthropic:MODEL[@URL], local:DIR.")
    var judges: [String] = []

    @Option(name: .customLong("base-url"), help: "Base URL for API judges given without @URL.")
    var baseURL: String?

    @Option(help: "Verdict cache (SQLite). Default: judge-cache.sqlite next to --out.")
    var cache: String?

    @Flag(name: .customLong("no-cache"), help: "Do not read or write a verdict cache.")
    var noCache = false

    @Option(help: "Verdicts output (JSON Lines).")
    var out: String?

    @Option(help: "Directory of NAME.rubric files overriding or adding rubrics.")
    var rubrics: String?

    @Option(name: .customLong("max-in-flight"), parsing: .unconditional, help: "Requests in flight per API endpoint, and verdicts in progress overall (default 64).")
    var maxInFlight: Int?

    @Option(parsing: .unconditional, help: "Requests-per-minute budget per API endpoint.")
    var rpm: Double?

    @Option(parsing: .unconditional, help: "Tokens-per-minute budget per API endpoint.")
    var tpm: Double?

    @Option(parsing: .unconditional, help: "Seconds allowed per request; also the longest Retry-After wait honoured (at most 60 s; a server asking for longer fails the verdict, to be retried by a rerun; default 60).")
    var timeout: Double?

    @Option(name: .customLong("max-attempts"), parsing: .unconditional, help: "Attempts per request, the first included (default 6).")
    var maxAttempts: Int?

    @Option(name: .customLong("openai-key-env"), help: "Environment variable holding the OpenAI-compatible API key.")
    var openaiKeyEnv = "OPENAI_API_KEY"

    @Option(name: .customLong("anthropic-key-env"), help: "Environment variable holding the Anthropic API key.")
    var anthropicKeyEnv = "ANTHROPIC_API_KEY"

    @Option(name: .customLong("price"), help: "JUDGE=IN,OUT: price per million input and output tokens, for the cost column (repeatable).")
    var prices: [String] = []

    @Option(help: "Also write an \"ensemble\" row per (answer, trait) aggregating the judges' verdicts: mean, median or primary:JUDGE (no extra calls).")
    var ensemble: String?

    @Option(name: .customLong("local-mode"), help: "local: judges: expectation (likelihood of every answer 0-100) or greedy (decode up to 8 tokens and parse).")
    var localMode: LocalJudgeMode?

    @Option(name: .customLong("local-precision"), help: ArgumentHelp("local: judges: product arithmetic, f32 (default) or bf16.",
                                                                   discussion: "bf16 rounds each product's input to bf16 and uses the CPU's bf16 dot-product instruction (AVX512_BF16), for bf16 weights: faster prefill; the scores move slightly, so bf16 verdicts are cached apart from f32 ones."))
    var localPrecision: ComputePrecision?

    @Option(name: .customLong("min-mass"), parsing: .unconditional, help: "openai: and local: judges: below this probability on numeric answers a verdict is no_numeric_mass (default 0.25).")
    var minMass: Double?

    @Option(help: "openai: judges: how the server's tokenizer spells numbers: auto (OpenAI and Azure hosts: whole; elsewhere a lone first digit is read on digit by digit), whole (one token per number 0-100) or digits (continue every first digit 1-10; needs vLLM's continue_final_message).")
    var numbers: NumberTokens?

    @Option(name: .customLong("judge-seed"), parsing: .unconditional, help: "openai: judges: the request's seed (the study: 0), for providers' best-effort determinism.")
    var judgeSeed: Int?

    @Flag(help: "Send openai: judges' uncached requests through the OpenAI Batch API first (cheaper, slower; needs the cache), then judge whatever the batch did not.")
    var batch = false

    @Option(name: .customLong("batch-poll"), parsing: .unconditional, help: "Seconds between batch status polls.")
    var batchPoll: Double = 60

    @OptionGroup var output: OutputOptions

    func validate() throws {
        _ = try settings()
        if !(batchPoll > 0 && batchPoll <= 86_400) { throw ValidationError("--batch-poll is \(batchPoll); it must be seconds in (0, 86400]") }
        for (name, v) in [("--rpm", rpm), ("--tpm", tpm)] {
            if let v, !(v > 0 && v.isFinite) { throw ValidationError("\(name) is \(v); it must be a positive budget per minute") }
        }
        guard !judges.isEmpty else { throw ValidationError("give at least one --judge") }
        if let action {
            guard action == "calibrate" else { throw ValidationError("unknown action `\(action)`; the only one is calibrate (or none, with --answers)") }
            for (flag, given) in [("--answers", answers != nil), ("--out", out != nil), ("--batch", batch), ("--ensemble", ensemble != nil)] where given {
                throw ValidationError("\(flag) is for judging answers; calibrate scores the calibration set (--set)")
            }
            return
        }
        if calibrationSet != nil { throw ValidationError("--set is for `misalign judge calibrate`") }
        guard answers != nil else { throw ValidationError("give --answers FILE (or `misalign judge calibrate`)") }
        guard out != nil else { throw ValidationError("give --out FILE for the verdicts") }
        guard !traits.isEmpty else { throw ValidationError("give at least one --trait") }
        if batch && noCache { throw ValidationError("--batch stores its results in the cache; drop --no-cache") }
        _ = try parsedPrices()
        if let ensemble, !["mean", "median"].contains(ensemble), !ensemble.hasPrefix("primary:") {
            throw ValidationError("--ensemble must be mean, median or primary:JUDGE")
        }
    }

    /// The judging settings of the flags, read and checked by the library's table
    /// (`JudgeSettings`): the names, types and ranges of an experiment's `judges:` section.
    func settings() throws -> JudgeSettings {
        var flags = FlagSettings()
        flags.add("max-in-flight", maxInFlight); flags.add("timeout", timeout); flags.add("max-attempts", maxAttempts)
        flags.add("min-mass", minMass); flags.add("numbers", numbers); flags.add("judge-seed", judgeSeed); flags.add("local-mode", localMode)
        flags.add("local-precision", localPrecision)
        var js = JudgeSettings(judges: [], names: [])
        js.maxInFlight = 64   // one command's verdicts, not a study's: more in flight than an experiment's 16
        try flags.apply(to: &js)
        return js
    }

    /// `--price JUDGE=IN,OUT`, by judge.
    func parsedPrices() throws -> [String: JudgePricing] {
        var pricing: [String: JudgePricing] = [:]
        for p in prices {
            let parts = p.split(separator: "=", maxSplits: 1)
            let nums = parts.count == 2 ? parts[1].split(separator: ",").compactMap { Double($0) } : []
            guard nums.count == 2 else { throw ValidationError("--price \(p): expected JUDGE=IN,OUT, e.g. openai:gpt-4.1-mini=0.4,1.6") }
            pricing[String(parts[0])] = JudgePricing(inputPerMillion: nums[0], outputPerMillion: nums[1])
        }
        return pricing
    }

    func run() throws {
        do {
            if action == "calibrate" { try runCalibration() } else { try runJudging() }
        } catch let e as JudgeError {
            throw CLIError("\(e)")
        }
    }

    private func runJudging() throws {
        let rubricSet = try rubrics.map { (d) throws(JudgeError) -> RubricSet in try RubricSet.loading(overrides: URL(fileURLWithPath: d)) } ?? RubricSet.builtin
        let chosen = try traits.map { (t) throws(JudgeError) -> Rubric in try rubricSet.require(t) }
        let records = try AnswerRecord.read(URL(fileURLWithPath: answers!))
        let js = try settings()
        let factory = js.judgeFactory(limits: RateLimits(maxInFlight: js.maxInFlight, requestsPerMinute: rpm, tokensPerMinute: tpm),
                                      keyVariables: [.openai: openaiKeyEnv, .anthropic: anthropicKeyEnv])
        // Made before the judges so their clients can say when they wait on a rate limit.
        let bar = ProgressBar(label: "judged", total: records.count * chosen.count * judges.count, mode: output.progressMode)
        factory.notice = { bar.note($0) }
        let built = try makeJudges(factory)
        guard Set(built.map(\.id)).count == built.count else {
            throw CLIError("two judges share an id (\(built.map(\.id).joined(separator: ", "))); judge each model once")
        }
        let pricing = try parsedPrices()
        let outURL = URL(fileURLWithPath: out!)
        let cacheStore: VerdictCache? = noCache ? nil
            : try VerdictCache(path: URL(fileURLWithPath: cache ?? outURL.deletingLastPathComponent().appendingPathComponent("judge-cache.sqlite").path))
        let runner = JudgeRunner(judges: built, rubrics: chosen, cache: cacheStore, maxInFlight: js.maxInFlight,
                                 pricing: pricing, secrets: factory.secrets)
        for n in try runner.identityNotes() { output.note(n) }
        if batch {
            guard let cacheStore else { throw ValidationError("--batch stores its results in the cache; drop --no-cache") }
            let items = records.flatMap { a in chosen.map { JudgeItem(rubric: $0, question: a.question, answer: a.answer) } }
            for case let judge as OpenAIJudge in built {
                let poll = batchPoll
                let outcome = try runBlocking { () async throws(JudgeError) -> OpenAIBatch.Outcome in
                    try await OpenAIBatch(judge: judge, cache: cacheStore, pollInterval: poll).prefill(items)
                }
                output.note("batch \(outcome.batchID ?? "-") for \(judge.id): \(outcome.submitted) submitted, \(outcome.cached) cached, \(outcome.failed) left for live calls")
            }
        }
        let summary = try runBlocking { () async throws(JudgeError) -> JudgeRunner.Summary in
            try await runner.run(answers: records, output: outURL) { p in
                bar.update(p.done, total: p.total, detail: "cached \(p.cached), errors \(p.errors)")
            }
        }
        bar.finish()
        if let ensemble {
            let aggregation: EnsembleJudge.Aggregation
            switch ensemble {
            case "mean": aggregation = .mean
            case "median": aggregation = .median
            case let p where p.hasPrefix("primary:"):
                let primary = String(p.dropFirst("primary:".count))
                guard built.contains(where: { $0.id == primary }) else { throw ValidationError("--ensemble \(p): \(primary) is not one of the judges") }
                aggregation = .primary(primary)
            default: throw ValidationError("--ensemble must be mean, median or primary:JUDGE")
            }
            let rows = try JudgeReport.addingEnsembleRows(summary.rows, aggregation: aggregation)
            do {
                try AtomicFile.write(Data(rows.map { $0.json().serialized() + "\n" }.joined().utf8), to: outURL)
            } catch {
                throw CLIError("cannot write \(outURL.path): \(error)")
            }
        }
        let agreement = built.count > 1 ? JudgeReport.agreement(rows: summary.rows, traits: chosen.map(\.name), judges: built.map(\.id)) : []
        if output.json {
            print(JudgeReport.summaryJSON(output: outURL.path, rows: summary.rows, usage: summary.usage, agreement: agreement).serialized())
        } else {
            print(JudgeReport.formatUsage(summary.usage))
            if !agreement.isEmpty { print("\n" + JudgeReport.formatAgreement(agreement)) }
        }
        let errors = summary.rows.filter { $0.verdict.status == .error }
        if let first = errors.first {
            throw IncompleteError("\(errors.count) of \(summary.rows.count) verdicts failed (first: \(first.verdict.detail)); rerun the same command to retry them, finished verdicts are kept")
        }
    }
}

extension JudgeCommand {
    /// The `--judge` specs made into judges (`--base-url` for API judges given without @URL).
    func makeJudges(_ factory: JudgeFactory) throws -> [any Judge] {
        var built: [any Judge] = []
        for text in judges {
            var spec = try JudgeSpec(parsing: text)
            if spec.baseURL == nil, spec.kind != .local { spec.baseURL = baseURL }
            built.append(try factory.make(spec))
        }
        return built
    }
}
