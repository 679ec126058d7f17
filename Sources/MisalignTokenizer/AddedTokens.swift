/// One entry of `added_tokens` in tokenizer.json.
public struct AddedToken: Sendable, Equatable {
    public var id: Int
    public var content: String
    /// Special tokens (`<|im_end|>`) can be dropped on decode with `skipSpecialTokens`.
    public var special: Bool
    /// Whether the token is matched in normalized text (true) or in the raw input (false).
    public var normalized: Bool
}

/// Finds added tokens in text, leftmost-longest, as HF's Aho-Corasick matcher does.
///
/// A byte trie walked from each candidate start: the walk stops at the first byte with no
/// edge, so the cost is bounded by the longest token per position (linear in the text), and
/// the root's first-byte filter skips almost every position without touching the trie.
struct AddedTokenMatcher: Sendable {
    private var edges: [[(byte: UInt8, node: Int32)]] = [[]]
    private var tokenAt: [Int32] = [-1]
    private var firstByte = [Bool](repeating: false, count: 256)

    var isEmpty: Bool { tokenAt.allSatisfy { $0 < 0 } }

    init(_ tokens: [(content: String, id: Int)]) {
        for (content, id) in tokens where !content.isEmpty {
            var node = 0
            for b in content.utf8 {
                if let e = edges[node].first(where: { $0.byte == b }) {
                    node = Int(e.node)
                } else {
                    edges.append([]); tokenAt.append(-1)
                    edges[node].append((b, Int32(edges.count - 1)))
                    node = edges.count - 1
                }
            }
            // The first added token with a given content wins, as in HF's added vocabulary.
            if tokenAt[node] < 0 { tokenAt[node] = Int32(id) }
            firstByte[Int(content.utf8.first!)] = true
        }
    }

    /// The leftmost match at or after `from`: (start, end, id), or nil.
    func firstMatch(in bytes: UnsafeBufferPointer<UInt8>, from: Int) -> (start: Int, end: Int, id: Int)? {
        var i = from
        let n = bytes.count
        while i < n {
            if firstByte[Int(bytes[i])] {
                var node = 0
                var j = i
                var best: (Int, Int)? = nil
                while j < n, let e = edges[node].first(where: { $0.byte == bytes[j] }) {
                    node = Int(e.node); j += 1
                    if tokenAt[node] >= 0 { best = (j, Int(tokenAt[node])) }
                }
                if let (end, id) = best { return (i, end, id) }
            }
            i += 1
        }
        return nil
    }
}
