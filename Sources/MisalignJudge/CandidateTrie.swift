/// The local judge's candidate answers ("0" ... "100", each followed by the end-of-turn token) as a trie
/// of token prefixes. log p(candidate | prompt) is the sum of one log-probability per token,
/// each read from the logits row after the prefix before it; candidates sharing a prefix share
/// that row. With Qwen's digit-by-digit numbers the 101 candidates (294 tokens) have 101 proper
/// prefixes besides the prompt: "1" ... "9", "10" ... "99", "100" and "0", so a verdict needs
/// 101 rows (one new token each, forked from its parent prefix's cache) instead of 193
/// positions over whole candidate sequences.
package struct CandidateTrie {
    /// Each node is a proper, non-empty prefix of a candidate: the node it extends (-1: the
    /// prompt) and its last token.
    let parent: [Int]
    let token: [Int32]
    /// Node ids by depth (depth 1 first): a level's rows can be computed once the level above's are.
    let levels: [[Int]]
    /// For each node, the (candidate, token index) pairs whose token is scored by its row.
    let scored: [[(candidate: Int, index: Int)]]
    /// The (candidate, token index 0) pairs scored by the prompt's own last row.
    let atRoot: [(candidate: Int, index: Int)]

    init(_ candidates: [[Int32]]) {
        var parent: [Int] = [], token: [Int32] = [], depth: [Int] = []
        var scored: [[(candidate: Int, index: Int)]] = []
        var index: [[Int32]: Int] = [:]
        var atRoot: [(candidate: Int, index: Int)] = []
        for (n, c) in candidates.enumerated() {
            atRoot.append((n, 0))
            var node = -1
            // The prefix c[0...k] scores c[k + 1]; the last token ends the candidate.
            for k in 0..<(c.count - 1) {
                let prefix = Array(c[0...k])
                let id: Int
                if let known = index[prefix] { id = known } else {
                    id = parent.count
                    index[prefix] = id
                    parent.append(node); token.append(c[k]); depth.append(k + 1); scored.append([])
                }
                scored[id].append((n, k + 1))
                node = id
            }
        }
        let deepest = depth.max() ?? 0
        levels = deepest == 0 ? [] : (1...deepest).map { d in depth.indices.filter { depth[$0] == d } }
        self.parent = parent; self.token = token; self.scored = scored; self.atRoot = atRoot
    }

    /// Rows a verdict needs besides the prompt's.
    package var rows: Int { parent.count }
}
