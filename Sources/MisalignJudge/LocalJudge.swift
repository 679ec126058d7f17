import Foundation
import Synchronization
import MisalignIO
import MisalignModel
import MisalignTokenizer

/// Judge run in-process by a Qwen2-architecture instruct model.
///
/// Qwen's tokenizer splits numbers into single digits, so the first output token's
/// distribution says little ("1" may start 1, 10 or 100). Instead every candidate answer
/// "0"..."100" is scored by its full log-likelihood after the prompt, its digit tokens plus
/// `<|im_end|>` (which separates "1" from "10"), and the score is the expectation over the
/// candidates' renormalised probabilities. The prompt is run once; each candidate is a fork of
/// its KV cache, so 101 candidates cost 101 short continuations, not 101 prompts.
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
    /// Candidates evaluated per forward call (bounds the `[rows, vocab]` logits memory).
    public let candidateBatch: Int
    public let id: String
    public let cacheIdentity: String
    /// Token ids of "0"..."100", each followed by `<|im_end|>`.
    package let candidates: [[Int32]]
    let endOfTurn: Int32
    /// The candidates as a trie of prefixes, each scored once.
    package let trie: CandidateTrie
    /// The model and its caches are not thread-safe: one verdict at a time, holding the rubrics'
    /// prefilled prefixes (`PrefixState`).
    let state = Mutex(PrefixState())
    /// Where `judge` runs its verdicts, in turn, off the cooperative pool.
    private let lane = SerialLane(label: "misalign.local-judge")

    public init(model: Qwen2Model, tokenizer: BPETokenizer, name: String, fingerprint: String,
                mode: Mode = .expectation, minNumericMass: Double = 0.25, candidateBatch: Int = 16) throws(JudgeError) {
        guard let end = tokenizer.specialTokenIDs["<|im_end|>"] ?? tokenizer.tokenID(for: "<|im_end|>") else {
            throw .localModel(reason: "tokenizer has no <|im_end|> token; the local judge needs a Qwen chat tokenizer")
        }
        self.model = model; self.tokenizer = tokenizer; self.mode = mode
        self.minNumericMass = minNumericMass; self.candidateBatch = max(1, candidateBatch)
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

    /// Runs the forward passes off the cooperative pool, one verdict at a time (`SerialLane`):
    /// seconds of CPU work on the pool would starve every other task (HTTP judges, progress) of
    /// its threads, and callers waiting for their turn hold no thread.
    public func judge(_ item: JudgeItem) async throws(JudgeError) -> Verdict {
        try await lane.run { () throws(JudgeError) -> Verdict in try self.judgeSync(item) }
    }

    package func judgeSync(_ item: JudgeItem) throws(JudgeError) -> Verdict {
        try state.withLock { (prefixes: inout PrefixState) throws(JudgeError) -> Verdict in try verdict(item, &prefixes) }
    }

    private func verdict(_ item: JudgeItem, _ prefixes: inout PrefixState) throws(JudgeError) -> Verdict {
        let start = Date()
        let prompt = try promptIDs(item)
        var v = Verdict(judge: id, trait: item.rubric.name, score: nil, status: .unparseable, rubricHash: item.rubric.sha256,
                        inputTokens: prompt.count, outputTokens: 0, attempts: 1)
        switch mode {
        case .expectation:
            let ll = try candidateLogLikelihoods(prompt: prompt, rubric: item.rubric, &prefixes)
            let e = Self.expectation(ll)
            v.outputTokens = candidates.reduce(0) { $0 + $1.count }
            if e.mass >= minNumericMass && e.mass > 0 {
                v.score = e.score; v.status = .ok
            } else {
                v.status = .noNumericMass
            }
            v.detail = String(format: "candidate mass %.3g", e.mass)
            v.raw = String(Int(ll.indices.max { ll[$0] < ll[$1] }!))
        case .greedy(let maxTokens):
            let (text, n) = try greedy(prompt: prompt, maxTokens: maxTokens)
            let (s, st, d) = ScoreParsing.parseText(text, rubric: item.rubric)
            v.score = s; v.status = st; v.detail = d; v.raw = text; v.outputTokens = n
        }
        v.latency = Date().timeIntervalSince(start)
        return v
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

/// Log-softmax of one logits row, computed once (max and log-sum-exp in f64).
struct LogSoftmaxRow {
    let row: UnsafeMutablePointer<Float>
    let logZ: Double
    init(_ row: UnsafeMutablePointer<Float>, count: Int) {
        self.row = row
        var m = -Float.infinity
        for j in 0..<count { m = max(m, row[j]) }
        var s = 0.0
        for j in 0..<count { s += Foundation.exp(Double(row[j] - m)) }
        logZ = Double(m) + Foundation.log(s)
    }
    func logProb(_ token: Int) -> Double { Double(row[token]) - logZ }
}
