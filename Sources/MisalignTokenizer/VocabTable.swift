/// Token text (exact UTF-8 bytes) to id. Used while loading — 150k vocabulary entries and as
/// many merges, three lookups each — and by `tokenID(for:)`.
///
/// Not `[String: Int]`: Swift hashes and compares strings by canonical equivalence, which for
/// non-ASCII text (every "Ġ…" token) means normalizing on each hash; that alone cost several
/// hundred milliseconds per load. Tokens are byte strings in HF, so exact bytes are also the
/// right equality.
struct VocabTable: Sendable {
    private var slots: [Int32]
    private var ids: [Int32] = []
    private var starts: [Int32] = [0]
    private var arena: [UInt8] = []
    private let mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        arena.reserveCapacity(capacity * 8)
        ids.reserveCapacity(capacity)
        starts.reserveCapacity(capacity + 1)
    }

    var count: Int { ids.count }

    @inline(__always) private static func hash(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        if b.isEmpty { return 0 }
        return Int(truncatingIfNeeded: WordCache.hash(b))
    }

    /// Inserts `key`; an existing key keeps its first id.
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, id: Int) {
        var i = VocabTable.hash(key) & mask
        while slots[i] >= 0 {
            if equal(Int(slots[i]), key) { return }
            i = (i + 1) & mask
        }
        slots[i] = Int32(ids.count)
        ids.append(Int32(id))
        arena.append(contentsOf: key)
        starts.append(Int32(arena.count))
    }

    func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int? {
        var i = VocabTable.hash(key) & mask
        while slots[i] >= 0 {
            let e = Int(slots[i])
            if equal(e, key) { return Int(ids[e]) }
            i = (i + 1) & mask
        }
        return nil
    }

    func lookup(_ s: String) -> Int? {
        var s = s
        return s.withUTF8 { lookup($0) }
    }

    mutating func insert(_ s: String, id: Int) {
        var s = s
        s.withUTF8 { insert($0, id: id) }
    }

    private func equal(_ e: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        let a = Int(starts[e]), b = Int(starts[e + 1])
        guard b - a == key.count else { return false }
        return arena.withUnsafeBufferPointer { ar in
            for k in 0..<key.count where ar[a + k] != key[k] { return false }
            return true
        }
    }
}
