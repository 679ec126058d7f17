import Foundation
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

extension LocalJudge {
    /// Verdicts so far that read their rubric's prefilled prefix, and those prefilled whole.
    package var prefixUse: (shared: Int, unshared: Int) { state.withLock { ($0.shared, $0.unshared) } }

    /// log p(candidate n | prompt) for n = 0...100, in a cache of its own.
    func candidateLogLikelihoods(prompt: [Int32]) throws(JudgeError) -> [Double] {
        let cache = KVCache(config: model.config)
        return try scoreCandidates(cache: cache, sequence: cache.addSequence(capacity: prompt.count), tokens: prompt)
    }

    /// The same, with the prompt's first tokens read from the rubric's prefilled prefix when
    /// the prompt starts with them (it does unless a question or answer changes how the text
    /// before it splits into tokens): only the rest is prefilled. The ids are the same either
    /// way, and so are the scores.
    func candidateLogLikelihoods(prompt: [Int32], rubric: Rubric, _ state: inout PrefixState) throws(JudgeError) -> [Double] {
        let cache = state.cache ?? KVCache(config: model.config)
        state.cache = cache
        let prefix: PrefixState.Prefix
        if let known = state.prefixes[rubric.sha256] {
            prefix = known
            state.recent.removeAll { $0 == rubric.sha256 }
        } else {
            let ids = try fixedPrefix(rubric)
            let s = cache.addSequence(capacity: max(1, ids.count))
            do { _ = try model.forward([ForwardInput(sequence: s, tokens: ids, logits: .none)], cache: cache) } catch {
                throw .localModel(reason: "forward: \(error)")
            }
            prefix = PrefixState.Prefix(ids: ids, sequence: s)
            state.prefixes[rubric.sha256] = prefix
            if state.recent.count >= PrefixState.capacity {
                let old = state.recent.removeFirst()
                if let p = state.prefixes.removeValue(forKey: old) { cache.remove(p.sequence) }
            }
        }
        state.recent.append(rubric.sha256)
        guard !prefix.ids.isEmpty, prompt.count > prefix.ids.count, prompt.starts(with: prefix.ids) else {
            state.unshared += 1
            return try candidateLogLikelihoods(prompt: prompt)
        }
        state.shared += 1
        let s = cache.fork(prefix.sequence, capacity: prompt.count - prefix.ids.count)
        defer { cache.remove(s) }
        return try scoreCandidates(cache: cache, sequence: s, tokens: Array(prompt[prefix.ids.count...]))
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

    /// Feeds `tokens` to `sequence`, then scores the candidates after them (`CandidateTrie`):
    /// the last row scores every candidate's first token; each trie node, one new token forked
    /// from its parent's cache, scores the next token of the candidates through it. Levels run
    /// in order, up to `candidateBatch` nodes per forward pass. Every sequence it makes is
    /// removed before it returns; `sequence` is left as fed.
    func scoreCandidates(cache: KVCache, sequence: Int, tokens: [Int32]) throws(JudgeError) -> [Double] {
        let vocab = model.config.vocabSize
        do {
            guard let first = try model.forward([ForwardInput(sequence: sequence, tokens: tokens, logits: .last)], cache: cache)[0] else {
                throw JudgeError.localModel(reason: "forward returned no logits for the prompt")
            }
            var ll = [Double](repeating: 0, count: candidates.count)
            let root = LogSoftmaxRow(first.pointer, count: vocab)
            for (n, k) in trie.atRoot { ll[n] = root.logProb(Int(candidates[n][k])) }
            var sequenceOf = [Int](repeating: -1, count: trie.rows)
            var above: [Int] = []
            for level in trie.levels {
                for start in stride(from: 0, to: level.count, by: candidateBatch) {
                    let nodes = level[start..<min(level.count, start + candidateBatch)]
                    var inputs: [ForwardInput] = []
                    for node in nodes {
                        let parent = trie.parent[node]
                        sequenceOf[node] = cache.fork(parent < 0 ? sequence : sequenceOf[parent], capacity: 1)
                        inputs.append(ForwardInput(sequence: sequenceOf[node], tokens: [trie.token[node]], logits: .all))
                    }
                    let out = try model.forward(inputs, cache: cache)
                    for (k, node) in nodes.enumerated() {
                        let row = LogSoftmaxRow(out[k]!.pointer, count: vocab)
                        for (n, i) in trie.scored[node] { ll[n] += row.logProb(Int(candidates[n][i])) }
                    }
                }
                for node in above { cache.remove(sequenceOf[node]) }
                above = level
            }
            for node in above { cache.remove(sequenceOf[node]) }
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
