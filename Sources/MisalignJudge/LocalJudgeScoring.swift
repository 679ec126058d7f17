import Foundation
import MisalignKernels
import MisalignModel

/// What the local judge keeps between verdicts: the fixed start of each rubric's prompt (the
/// chat template and the rubric's text up to the first answer-dependent token), prefilled once
/// into a cache that every verdict of that rubric forks from. At most `capacity` rubrics are
/// kept, the least recently used leaving first.
struct PrefixState {
    struct Prefix { let ids: [Int32]; let sequence: Int }
    static let capacity = 8
    var cache: KVCache?
    var prefixes: [String: Prefix] = [:]
    var recent: [String] = []
    /// Verdicts that found their rubric's prefix at the start of their prompt, and those that
    /// did not (prefilled whole).
    var shared = 0, unshared = 0
}

/// A prompt placed in the cache, ready to score: its sequence (a fork of the rubric's prefix,
/// or a fresh one) and the tokens still to feed it.
struct PlacedPrompt {
    let sequence: Int
    let tokens: [Int32]
}

extension LocalJudge {
    /// Verdicts so far that read their rubric's prefilled prefix, and those prefilled whole.
    package var prefixUse: (shared: Int, unshared: Int) { state.withLock { ($0.shared, $0.unshared) } }

    /// log p(candidate n | prompt) for n = 0...100, in a cache of its own.
    func candidateLogLikelihoods(prompt: [Int32]) throws(JudgeError) -> [Double] {
        let cache = KVCache(config: model.config)
        return try scoreCandidates(cache: cache, prompts: [PlacedPrompt(sequence: cache.addSequence(capacity: prompt.count), tokens: prompt)])[0]
    }

    /// The same for several prompts scored together (`verdictBatch`), each prompt's first tokens
    /// read from its rubric's prefilled prefix when it starts with them (it does unless a question
    /// or answer changes how the text before it splits into tokens): only the rest is prefilled.
    /// The ids are the same either way, and so are the scores.
    func candidateLogLikelihoods(prompts: [[Int32]], rubrics: [Rubric], _ state: inout PrefixState) throws(JudgeError) -> [[Double]] {
        let cache = state.cache ?? KVCache(config: model.config)
        state.cache = cache
        var placed: [PlacedPrompt] = []
        defer { for p in placed { cache.remove(p.sequence) } }
        for (prompt, rubric) in zip(prompts, rubrics) {
            let prefix = try self.prefix(rubric, cache: cache, &state)
            if !prefix.ids.isEmpty, prompt.count > prefix.ids.count, prompt.starts(with: prefix.ids) {
                state.shared += 1
                placed.append(PlacedPrompt(sequence: cache.fork(prefix.sequence, capacity: prompt.count - prefix.ids.count),
                                           tokens: Array(prompt[prefix.ids.count...])))
            } else {
                state.unshared += 1
                placed.append(PlacedPrompt(sequence: cache.addSequence(capacity: prompt.count), tokens: prompt))
            }
        }
        return try scoreCandidates(cache: cache, prompts: placed)
    }

    /// The rubric's prefilled prefix, prefilling it on first use. A prefix leaving the LRU keeps
    /// its storage alive for the forks already made from it.
    private func prefix(_ rubric: Rubric, cache: KVCache, _ state: inout PrefixState) throws(JudgeError) -> PrefixState.Prefix {
        if let known = state.prefixes[rubric.sha256] {
            state.recent.removeAll { $0 == rubric.sha256 }
            state.recent.append(rubric.sha256)
            return known
        }
        let ids = try fixedPrefix(rubric)
        let s = cache.addSequence(capacity: max(1, ids.count))
        do { _ = try model.forward([ForwardInput(sequence: s, tokens: ids, logits: .none)], cache: cache) } catch {
            throw .localModel(reason: "forward: \(error)")
        }
        let prefix = PrefixState.Prefix(ids: ids, sequence: s)
        state.prefixes[rubric.sha256] = prefix
        if state.recent.count >= PrefixState.capacity {
            let old = state.recent.removeFirst()
            if let p = state.prefixes.removeValue(forKey: old) { cache.remove(p.sequence) }
        }
        state.recent.append(rubric.sha256)
        return prefix
    }

    /// The tokens every prompt of `rubric` starts with: those two prompts with different
    /// questions and answers share, less the last two (a question's first characters may merge
    /// with the text before it into other tokens; a prompt that does not start with the result
    /// is prefilled whole).
    package func fixedPrefix(_ rubric: Rubric) throws(JudgeError) -> [Int32] {
        let a = try promptIDs(JudgeItem(rubric: rubric, question: "A", answer: "A"))
        let b = try promptIDs(JudgeItem(rubric: rubric, question: "B", answer: "B"))
        var n = 0
        while n < min(a.count, b.count) && a[n] == b[n] { n += 1 }
        return Array(a.prefix(max(0, n - 2)))
    }

    /// Feeds each prompt's tokens to its sequence, then scores the candidates after them
    /// (`CandidateTrie`): a prompt's last row scores every candidate's first token; each trie
    /// node, one new token forked from its parent's cache, scores the next token of the
    /// candidates through it. The prompts are prefilled together (up to `prefillTokens` tokens
    /// per forward pass), then the trie's levels run in order, each level's rows for every
    /// prompt together, up to `candidateBatch` rows per forward pass. Every sequence it makes is
    /// removed before it returns; the prompts' sequences are left as fed.
    func scoreCandidates(cache: KVCache, prompts: [PlacedPrompt]) throws(JudgeError) -> [[Double]] {
        let vocab = model.config.vocabSize
        var ll = [[Double]](repeating: [Double](repeating: 0, count: candidates.count), count: prompts.count)
        // sequenceOf[p][node]: the sequence holding prompt p's trie node.
        var sequenceOf = [[Int]](repeating: [Int](repeating: -1, count: trie.rows), count: prompts.count)
        var above: [(prompt: Int, node: Int)] = []
        defer { for (p, node) in above { cache.remove(sequenceOf[p][node]) } }
        do {
            var start = 0
            while start < prompts.count {
                var end = start + 1, tokens = prompts[start].tokens.count
                while end < prompts.count && tokens + prompts[end].tokens.count <= prefillTokens { tokens += prompts[end].tokens.count; end += 1 }
                let out = try model.forward(prompts[start..<end].map { ForwardInput(sequence: $0.sequence, tokens: $0.tokens, logits: .last) }, cache: cache)
                for p in start..<end {
                    guard let first = out[p - start] else { throw JudgeError.localModel(reason: "forward returned no logits for the prompt") }
                    let root = LogSoftmaxRow(first.pointer, count: vocab)
                    for (n, k) in trie.atRoot { ll[p][n] = root.logProb(Int(candidates[n][k])) }
                }
                start = end
            }
            for level in trie.levels {
                let rows = prompts.indices.flatMap { p in level.map { (prompt: p, node: $0) } }
                for first in stride(from: 0, to: rows.count, by: candidateBatch) {
                    let chunk = rows[first..<min(rows.count, first + candidateBatch)]
                    var inputs: [ForwardInput] = []
                    for (p, node) in chunk {
                        let parent = trie.parent[node]
                        sequenceOf[p][node] = cache.fork(parent < 0 ? prompts[p].sequence : sequenceOf[p][parent], capacity: 1)
                        inputs.append(ForwardInput(sequence: sequenceOf[p][node], tokens: [trie.token[node]], logits: .all))
                    }
                    let out = try model.forward(inputs, cache: cache)
                    for (k, (p, node)) in chunk.enumerated() {
                        let row = LogSoftmaxRow(out[k]!.pointer, count: vocab)
                        for (n, i) in trie.scored[node] { ll[p][n] += row.logProb(Int(candidates[n][i])) }
                    }
                }
                for (p, node) in above { cache.remove(sequenceOf[p][node]) }
                above = rows
            }
            return ll
        } catch let e as JudgeError {
            throw e
        } catch {
            throw .localModel(reason: "forward: \(error)")
        }
    }

    /// log p(candidate n | prompt) with each candidate decoded whole in a sequence of its own
    /// forked from the prompt (the scoring before the trie): the reference the trie is checked
    /// against.
    package func separateCandidateLogLikelihoods(prompt: [Int32]) throws -> [Double] {
        let vocab = model.config.vocabSize
        let cache = KVCache(config: model.config)
        let p = cache.addSequence(capacity: prompt.count)
        guard let first = try model.forward([ForwardInput(sequence: p, tokens: prompt, logits: .last)], cache: cache)[0] else { return [] }
        let firstRow = LogSoftmaxRow(first.pointer, count: vocab)
        var ll = candidates.map { firstRow.logProb(Int($0[0])) }
        for (i, c) in candidates.enumerated() {
            let s = cache.fork(p, capacity: c.count - 1)
            let rows = try model.forward([ForwardInput(sequence: s, tokens: Array(c.dropLast()), logits: .all)], cache: cache)[0]!
            for r in 0..<(c.count - 1) { ll[i] += LogSoftmaxRow(rows.pointer + r * vocab, count: vocab).logProb(Int(c[r + 1])) }
            cache.remove(s)
        }
        return ll
    }
}

/// Log-softmax of one logits row: its log-sum-exp computed once (`misalign_log_sum_exp`: the
/// max in f32, the exponentials and their sum in f64).
struct LogSoftmaxRow {
    let row: UnsafeMutablePointer<Float>
    let logZ: Double
    init(_ row: UnsafeMutablePointer<Float>, count: Int) {
        self.row = row
        logZ = RowMath.logSumExp(row, count: count)
    }
    func logProb(_ token: Int) -> Double { Double(row[token]) - logZ }
}
