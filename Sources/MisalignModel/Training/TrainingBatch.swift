/// One micro-batch for training: its sequences stacked row after row without padding (each
/// sequence keeps positions 0..<T and attends only to itself, which is exactly what right
/// padding with an attention mask computes, minus the padded rows' wasted work).
public struct TrainingBatch: Sendable, Equatable {
    /// All sequences' token ids, concatenated.
    public var tokens: [Int32]
    /// Length of each sequence.
    public var lengths: [Int]
    /// Per row: the id the row must predict (the next token) when that token is trained on, else -1.
    public var targets: [Int32]

    public init(tokens: [Int32], lengths: [Int], targets: [Int32]) {
        precondition(lengths.reduce(0, +) == tokens.count && targets.count == tokens.count, "inconsistent batch")
        self.tokens = tokens; self.lengths = lengths; self.targets = targets
    }

    /// A batch from tokenised examples: row i of a sequence predicts token i+1 when `mask[i+1]`
    /// (the causal shift Hugging Face applies to `labels`).
    public init(sequences: [(ids: [Int], mask: [Bool])]) {
        var tokens: [Int32] = [], lengths: [Int] = [], targets: [Int32] = []
        for s in sequences {
            precondition(s.ids.count == s.mask.count, "ids and mask differ in length")
            tokens += s.ids.map { Int32($0) }
            lengths.append(s.ids.count)
            for i in 0..<s.ids.count {
                targets.append(i + 1 < s.ids.count && s.mask[i + 1] ? Int32(s.ids[i + 1]) : -1)
            }
        }
        self.init(tokens: tokens, lengths: lengths, targets: targets)
    }

    public var rows: Int { tokens.count }
    /// Rows that carry a loss term (HF's `num_items_in_batch` counts these).
    public var targetCount: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
}
