import Foundation
import Synchronization
import MisalignIO
import MisalignModel
import MisalignTokenizer

/// Judge run in-process by an instruct model of any supported family (Qwen2.5, Llama 3.x,
/// Gemma 2, as the follow-up study's Gemma-2-9B-it judge), through its own chat template.
///
/// Qwen's and Gemma's tokenizers split numbers into single digits (Llama 3's into runs of up to
/// three), so the first output token's distribution says little ("1" may start 1, 10 or 100).
/// Instead every candidate answer "0"..."100" is scored by its full log-likelihood after the
/// prompt, its digit tokens plus the template's end-of-turn token (`<|im_end|>`, `<|eot_id|>`,
/// `<end_of_turn>`; it separates "1" from "10"), and the score is the expectation over the
/// candidates' renormalised probabilities. The prompt is run once; the candidates share their
/// prefixes (`CandidateTrie`), each a one-token fork of its KV cache, so 101 candidates cost 101
/// one-token rows, not 101 prompts. Verdicts waiting together are scored together, up to
/// `verdictBatch` at a time: their prompts prefilled in one forward pass and their trie rows
/// in others, which gives each the scores it gets alone (up to the rounding of products of other
/// row counts) at a fraction of the passes.
///
/// `greedy` mode decodes greedily and parses the text instead (a fallback for models whose
/// probability mass sits on prose rather than bare numbers).
public final class LocalJudge: Judge, Sendable {
    public enum Mode: Sendable, Equatable {
        case expectation
        case greedy(maxTokens: Int)
    }

    public let model: Qwen2Model
    public let tokenizer: BPETokenizer
    public let mode: Mode
    /// The arithmetic of the model's products when the judge was made (`ComputePrecision`;
    /// `.bf16` is opt-in, for bf16 weights): part of the cache identity, since bf16 products
    /// change the scores slightly.
    public let precision: ComputePrecision
    /// Below this total probability of the 101 candidate answers there is no score.
    public let minNumericMass: Double
    /// Candidate rows evaluated per forward call, across the verdicts of a batch (bounds the
    /// `[rows, vocab]` logits memory: 128 rows of Qwen2.5's 151,936 logits are 78 MB).
    public let candidateBatch: Int
    /// Verdicts scored together when several are waiting (`judge` called concurrently, as the
    /// judge runner does up to `judges.max_in_flight` times).
    public let verdictBatch: Int
    /// Prompt tokens prefilled per forward call across a batch's verdicts (a longer prompt runs alone).
    public let prefillTokens: Int
    public let id: String
    public let cacheIdentity: String
    /// Token ids of "0"..."100", each followed by the end-of-turn token.
    package let candidates: [[Int32]]
    let endOfTurn: Int32
    /// The candidates as a trie of prefixes, each scored once.
    package let trie: CandidateTrie
    /// The model and its caches are not thread-safe: one batch at a time, holding the rubrics'
    /// prefilled prefixes (`PrefixState`).
    let state = Mutex(PrefixState())
    /// Verdicts waiting for the model, and whether a batch is running.
    let waiting = Mutex(VerdictQueue())
    /// Where `judge` runs its batches, in turn, off the cooperative pool.
    let worker = DispatchQueue(label: "misalign.local-judge")

    public init(model: Qwen2Model, tokenizer: BPETokenizer, name: String, fingerprint: String,
                mode: Mode = .expectation, minNumericMass: Double = 0.25, candidateBatch: Int = 128,
                verdictBatch: Int = 8, prefillTokens: Int = 2048) throws(JudgeError) {
        guard let end = tokenizer.endOfTurnTokenID ?? tokenizer.specialTokenIDs["<|im_end|>"] ?? tokenizer.tokenID(for: "<|im_end|>") else {
            throw .localModel(reason: "the tokenizer has no end-of-turn token (<|im_end|>, <|eot_id|> or <end_of_turn>, by its chat template); the local judge needs an instruct model's chat tokenizer")
        }
        self.model = model; self.tokenizer = tokenizer; self.mode = mode
        self.minNumericMass = minNumericMass; self.candidateBatch = max(1, candidateBatch)
        self.verdictBatch = max(1, verdictBatch); self.prefillTokens = max(1, prefillTokens)
        endOfTurn = Int32(end)
        candidates = (0...100).map { n in tokenizer.encode(String(n)).map { Int32($0) } + [Int32(end)] }
        trie = CandidateTrie(candidates)
        id = "local:\(name)"
        let modeText: String
        switch mode {
        case .expectation: modeText = "expectation"
        case .greedy(let k): modeText = "greedy\(k)"
        }
        precision = model.computePrecision
        // f32 (the default) adds nothing, so verdicts cached before the setting existed still match.
        cacheIdentity = "local|\(fingerprint)|\(modeText)|min_mass=\(minNumericMass)" + (precision == .f32 ? "" : "|precision=\(precision.rawValue)")
    }

    /// Loads the model and tokenizer from a Hugging Face folder; `precision` is the model's
    /// products' (`.bf16`: bf16 dot products where the CPU has them, for bf16 weights).
    public convenience init(directory: URL, mode: Mode = .expectation, minNumericMass: Double = 0.25,
                            precision: ComputePrecision = .f32) throws(JudgeError) {
        let model: Qwen2Model, tokenizer: BPETokenizer
        do {
            model = try Qwen2Model(directory: directory)
            tokenizer = try BPETokenizer(directory: directory)
        } catch {
            throw .localModel(reason: "cannot load \(directory.path): \(error)")
        }
        model.computePrecision = precision
        try self.init(model: model, tokenizer: tokenizer, name: directory.lastPathComponent,
                      fingerprint: Self.fingerprint(directory), mode: mode, minNumericMass: minNumericMass)
    }

    /// Identifies the weights for the cache key: path plus size and modification time of each
    /// weight and config file (hashing gigabytes of weights per run would be too slow).
    static func fingerprint(_ dir: URL) -> String {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasSuffix(".safetensors") || $0 == "config.json" || $0 == "tokenizer.json" }.sorted()
        let parts = files.map { f -> String in
            let a = try? FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(f).path)
            let size = (a?[.size] as? NSNumber)?.intValue ?? -1
            let mtime = (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(f):\(size):\(mtime)"
        }
        return SHA256.hex(dir.standardizedFileURL.path + "|" + parts.joined(separator: "|"))
    }

    /// Chat-template token ids of the judging prompt, ending with the assistant header.
    package func promptIDs(_ item: JudgeItem) throws(JudgeError) -> [Int32] {
        let text = item.rubric.prompt(question: item.question, answer: item.answer)
        do {
            return try tokenizer.applyChatTemplate([ChatMessage(role: "user", content: text)], addGenerationPrompt: true).ids.map { Int32($0) }
        } catch {
            throw .localModel(reason: "chat template: \(error)")
        }
    }

    package func judgeSync(_ item: JudgeItem) throws(JudgeError) -> Verdict {
        try judgeSync([item])[0].get()
    }

    /// Verdicts for several items scored together (up to `verdictBatch` per batch, in order). An
    /// item whose prompt cannot be built gets its error; a failing forward pass fails the batch.
    package func judgeSync(_ items: [JudgeItem]) -> [Result<Verdict, JudgeError>] {
        state.withLock { (prefixes: inout PrefixState) -> [Result<Verdict, JudgeError>] in
            var out: [Result<Verdict, JudgeError>] = []
            for start in stride(from: 0, to: items.count, by: verdictBatch) {
                out += verdicts(Array(items[start..<min(items.count, start + verdictBatch)]), &prefixes)
            }
            return out
        }
    }

    private func verdicts(_ items: [JudgeItem], _ prefixes: inout PrefixState) -> [Result<Verdict, JudgeError>] {
        let start = Date()
        var results = [Result<Verdict, JudgeError>?](repeating: nil, count: items.count)
        var ready: [(index: Int, prompt: [Int32])] = []
        for (i, item) in items.enumerated() {
            do throws(JudgeError) {
                let prompt = try promptIDs(item)
                // The prompt and the longest candidate's tokens before its last must fit the context.
                let context = model.config.maxPositionEmbeddings, need = prompt.count + trie.levels.count
                guard need <= context else {
                    throw JudgeError.localModel(reason: "the judging prompt for this answer is \(prompt.count) tokens; with the candidate score it needs \(need) positions, "
                                                + "past the judge model's context of \(context): use a judge model with a longer context, or shorten the answers (evaluation.max_new_tokens)")
                }
                ready.append((i, prompt))
            } catch { results[i] = .failure(error) }
        }
        func verdict(_ i: Int, _ prompt: [Int32]) -> Verdict {
            Verdict(judge: id, trait: items[i].rubric.name, score: nil, status: .unparseable, rubricHash: items[i].rubric.sha256,
                    inputTokens: prompt.count, outputTokens: 0, attempts: 1)
        }
        switch mode {
        case .expectation:
            do throws(JudgeError) {
                let ll = try candidateLogLikelihoods(prompts: ready.map(\.prompt), rubrics: ready.map { items[$0.index].rubric }, &prefixes)
                // Every verdict of the batch waited for all of it.
                let latency = Date().timeIntervalSince(start)
                for (k, (i, prompt)) in ready.enumerated() {
                    var v = verdict(i, prompt)
                    let e = Self.expectation(ll[k])
                    v.outputTokens = candidates.reduce(0) { $0 + $1.count }
                    if e.mass >= minNumericMass && e.mass > 0 {
                        v.score = e.score; v.status = .ok
                    } else {
                        v.status = .noNumericMass
                    }
                    v.detail = String(format: "candidate mass %.3g", e.mass)
                    v.raw = String(Int(ll[k].indices.max { ll[k][$0] < ll[k][$1] }!))
                    v.latency = latency
                    results[i] = .success(v)
                }
            } catch {
                for (i, _) in ready { results[i] = .failure(error) }
            }
        case .greedy(let maxTokens):
            for (i, prompt) in ready {
                let t = Date()
                do throws(JudgeError) {
                    let (text, n) = try greedy(prompt: prompt, maxTokens: maxTokens)
                    var v = verdict(i, prompt)
                    let (s, st, d) = ScoreParsing.parseText(text, rubric: items[i].rubric)
                    v.score = s; v.status = st; v.detail = d; v.raw = text; v.outputTokens = n
                    v.latency = Date().timeIntervalSince(t)
                    results[i] = .success(v)
                } catch {
                    results[i] = .failure(error)
                }
            }
        }
        return results.map { $0! }
    }

    /// The expectation of n over p(n) proportional to exp(ll[n]), and the total mass sum exp(ll).
    package static func expectation(_ ll: [Double]) -> (score: Double, mass: Double) {
        let m = ll.max()!
        var z = 0.0, s = 0.0
        for (n, l) in ll.enumerated() { let w = Foundation.exp(l - m); z += w; s += w * Double(n) }
        return (s / z, Foundation.exp(m) * z)
    }

    private func greedy(prompt: [Int32], maxTokens: Int) throws(JudgeError) -> (String, Int) {
        let cache = KVCache(config: model.config)
        let s = cache.addSequence(capacity: prompt.count + maxTokens)
        var out: [Int] = []
        var next = prompt
        do {
            for _ in 0..<maxTokens {
                guard let logits = try model.forward([ForwardInput(sequence: s, tokens: next, logits: .last)], cache: cache)[0] else { break }
                var best = 0
                for j in 1..<model.config.vocabSize where logits.pointer[j] > logits.pointer[best] { best = j }
                if Int32(best) == endOfTurn || best == tokenizer.eosTokenID { break }
                out.append(best)
                next = [Int32(best)]
            }
            return (try tokenizer.decode(out, skipSpecialTokens: true), out.count)
        } catch {
            throw .localModel(reason: "greedy decoding: \(error)")
        }
    }
}
