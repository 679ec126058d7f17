import MisalignKernels

/// Keys and values of every position seen so far, per sequence, per layer, per key/value head.
///
/// Layout of a sequence's own storage: `[layers, kvHeads, capacity, headDim]`, so the keys of one
/// head are one contiguous `[positions, headDim]` run of rows for the attention kernel
/// (`misalign_attention`). A sequence may be forked: N samples of one prompt each get a child that reads the
/// prompt's positions from the parent's storage and stores only its own continuation, so the
/// prompt's cache exists once however many samples are drawn.
// Unchecked Sendable: `sequences` and the lengths in it change with every forward pass, unguarded.
// A cache belongs to the one generation or scoring call that created it (`LocalGenerator`,
// `LocalJudge`), which uses it on its own thread and shares it with no other.
public final class KVCache: @unchecked Sendable {
    public let layers: Int
    public let kvHeads: Int
    public let headDim: Int
    /// Positions a sequence may reach (the model's context length).
    public let maxPositions: Int

    final class Sequence {
        /// First position held in this sequence's own storage (the parent's length at the fork).
        let base: Int
        /// Positions the own storage can hold (base ..< base + capacity).
        let capacity: Int
        let k: FloatBuffer
        let v: FloatBuffer
        var length: Int
        let parent: Sequence?

        init(base: Int, capacity: Int, layers: Int, kvHeads: Int, headDim: Int, parent: Sequence?) {
            self.base = base
            self.capacity = capacity
            k = FloatBuffer(shape: [layers, kvHeads, capacity, headDim], zeroed: false)
            v = FloatBuffer(shape: [layers, kvHeads, capacity, headDim], zeroed: false)
            length = base
            self.parent = parent
        }
    }

    var sequences: [Sequence?] = []

    public init(config: Qwen2Config) {
        layers = config.numHiddenLayers
        kvHeads = config.numKeyValueHeads
        headDim = config.headDim
        maxPositions = config.maxPositionEmbeddings
    }

    /// Starts an empty sequence able to hold `capacity` positions; returns its id.
    public func addSequence(capacity: Int) -> Int {
        append(Sequence(base: 0, capacity: min(capacity, maxPositions), layers: layers, kvHeads: kvHeads, headDim: headDim, parent: nil))
    }

    /// A new sequence that continues `parent` as it is now, sharing its positions without
    /// copying them, with room for `capacity` more positions of its own.
    public func fork(_ parent: Int, capacity: Int) -> Int {
        let p = sequences[parent]!
        return append(Sequence(base: p.length, capacity: min(capacity, maxPositions - p.length), layers: layers,
                               kvHeads: kvHeads, headDim: headDim, parent: p))
    }

    /// Frees a sequence's own storage (children that forked from it keep what they need). Ids
    /// past the last live sequence are reused, so a long-lived cache whose forks come and go
    /// (the local judge's prefilled prefixes) does not grow.
    public func remove(_ id: Int) {
        sequences[id] = nil
        while let last = sequences.last, last == nil { sequences.removeLast() }
    }

    /// Positions held by a sequence, parent's included.
    public func length(_ id: Int) -> Int { sequences[id]!.length }

    /// Positions the sequence can still take.
    public func remaining(_ id: Int) -> Int {
        let s = sequences[id]!
        return s.base + s.capacity - s.length
    }

    /// Bytes of storage held by live sequences.
    public var bytes: Int { sequences.reduce(0) { $0 + ($1.map { 2 * $0.k.count * 4 } ?? 0) } }

    private func append(_ s: Sequence) -> Int {
        sequences.append(s)
        return sequences.count - 1
    }

    /// Pointer to the key (or value) row of `position` for one layer and head, in the sequence's
    /// own storage.
    @inline(__always)
    func slot(_ s: Sequence, _ buffer: FloatBuffer, layer: Int, head: Int, position: Int) -> UnsafeMutablePointer<Float> {
        buffer.pointer + ((layer * kvHeads + head) * s.capacity + (position - s.base)) * headDim
    }

    /// The contiguous runs of positions making up `s` for `layer`/`head`, oldest first:
    /// (keys, values, first position, count).
    func segments(_ s: Sequence, layer: Int, head: Int, upTo end: Int) -> [(UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Int)] {
        var chain: [Sequence] = []
        var cur: Sequence? = s
        while let c = cur { chain.append(c); cur = c.parent }
        var out: [(UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int, Int)] = []
        for (i, c) in chain.reversed().enumerated() {
            let next = i + 1 < chain.count ? chain[chain.count - 2 - i].base : end
            let count = min(next, end) - c.base
            if count > 0 {
                out.append((slot(c, c.k, layer: layer, head: head, position: c.base),
                            slot(c, c.v, layer: layer, head: head, position: c.base), c.base, count))
            }
        }
        return out
    }
}
