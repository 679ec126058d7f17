/// Byte-pair merging as HF `BPE::merge_word` does it: repeatedly apply the adjacent pair with
/// the lowest merge rank, leftmost first on ties, until no adjacent pair has a merge.

/// Open-addressing map from a token-id pair to (rank, merged id). Swift's `Dictionary` hashes
/// with SipHash, which dominates the merge loop; merge ranks are looked up once per adjacent
/// pair per step, so a multiplicative hash on one `UInt64` key is worth the few lines.
struct MergeTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt64]
    private let mask: Int
    static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 3 { size <<= 1 } // load factor below 1/3 keeps probes short
        keys = [UInt64](repeating: MergeTable.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always) private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 40) & mask
    }

    /// Inserts unless the pair is already present; HF keeps the first (lowest) rank of a
    /// duplicated merge line, because later duplicates can never win.
    mutating func insert(left: UInt32, right: UInt32, rank: UInt32, merged: UInt32) {
        let key = UInt64(left) << 32 | UInt64(right)
        var i = MergeTable.slot(key, mask)
        while keys[i] != MergeTable.empty {
            if keys[i] == key { return }
            i = (i + 1) & mask
        }
        keys[i] = key
        values[i] = UInt64(rank) << 32 | UInt64(merged)
    }

    /// `rank << 32 | merged`, or `UInt64.max` when the pair has no merge.
    @inline(__always) func lookup(_ left: UInt32, _ right: UInt32) -> UInt64 {
        let key = UInt64(left) << 32 | UInt64(right)
        return keys.withUnsafeBufferPointer { k in
            var i = MergeTable.slot(key, mask)
            while true {
                let stored = k[i]
                if stored == key { return values.withUnsafeBufferPointer { $0[i] } }
                if stored == MergeTable.empty { return UInt64.max }
                i = (i + 1) & mask
            }
        }
    }
}

/// Words up to this many symbols use the quadratic scan, which is faster than a heap for the
/// short words that make up nearly all text; longer ones (CJK sentences, runs of symbols) use
/// the heap so a 10 kB word costs O(n log n) rather than O(n²).
let bpeLinearLimit = 48

/// Merges `symbols` (initially one id per byte) in place and returns the final count.
func bpeMerge(_ symbols: inout [UInt32], _ merges: MergeTable) -> Int {
    if symbols.count < 2 { return symbols.count }
    if symbols.count <= bpeLinearLimit { return bpeMergeLinear(&symbols, merges) }
    return bpeMergeHeap(&symbols, merges)
}

/// Quadratic reference form: find the lowest-ranked adjacent pair (leftmost on ties), merge.
func bpeMergeLinear(_ symbols: inout [UInt32], _ merges: MergeTable) -> Int {
    var n = symbols.count
    if n < 2 { return n }
    // ranks[i] is the merge value of (symbols[i], symbols[i+1]); ordering by the packed value
    // orders by rank first, since rank sits in the high half.
    var ranks = [UInt64](repeating: UInt64.max, count: n - 1)
    for i in 0..<(n - 1) { ranks[i] = merges.lookup(symbols[i], symbols[i + 1]) }
    while n > 1 {
        var best = UInt64.max
        var at = -1
        for i in 0..<(n - 1) where ranks[i] < best { best = ranks[i]; at = i }
        if at < 0 { break }
        symbols[at] = UInt32(truncatingIfNeeded: best)
        symbols.remove(at: at + 1)
        ranks.remove(at: at)
        n -= 1
        if at > 0 { ranks[at - 1] = merges.lookup(symbols[at - 1], symbols[at]) }
        if at < n - 1 { ranks[at] = merges.lookup(symbols[at], symbols[at + 1]) }
    }
    symbols.removeLast(symbols.count - n)
    return n
}

/// Heap form, as in HF: a min-heap of (rank, position) over a doubly linked symbol list.
/// Entries go stale when a neighbour merges; a popped entry is applied only if its pair still
/// stands at that position, checked by looking the pair up again (ranks are unique per pair).
func bpeMergeHeap(_ symbols: inout [UInt32], _ merges: MergeTable) -> Int {
    let n = symbols.count
    var prev = [Int32](repeating: -1, count: n)
    var next = [Int32](repeating: -1, count: n)
    var alive = [Bool](repeating: true, count: n)
    for i in 0..<n {
        prev[i] = Int32(i - 1)
        next[i] = i + 1 < n ? Int32(i + 1) : -1
    }
    var heap = MinHeap()
    for i in 0..<(n - 1) {
        let v = merges.lookup(symbols[i], symbols[i + 1])
        if v != UInt64.max { heap.push((v & 0xFFFF_FFFF_0000_0000) | UInt64(i)) }
    }
    while let top = heap.pop() {
        let rank = top >> 32
        let pos = Int(top & 0xFFFF_FFFF)
        guard alive[pos], next[pos] >= 0 else { continue }
        let right = Int(next[pos])
        let v = merges.lookup(symbols[pos], symbols[right])
        guard v != UInt64.max, v >> 32 == rank else { continue }
        symbols[pos] = UInt32(truncatingIfNeeded: v)
        alive[right] = false
        next[pos] = next[right]
        if next[right] >= 0 { prev[Int(next[right])] = Int32(pos) }
        if prev[pos] >= 0 {
            let p = Int(prev[pos])
            let w = merges.lookup(symbols[p], symbols[pos])
            if w != UInt64.max { heap.push((w & 0xFFFF_FFFF_0000_0000) | UInt64(p)) }
        }
        if next[pos] >= 0 {
            let w = merges.lookup(symbols[pos], symbols[Int(next[pos])])
            if w != UInt64.max { heap.push((w & 0xFFFF_FFFF_0000_0000) | UInt64(pos)) }
        }
    }
    var out = 0
    var i = 0
    while i >= 0 && i < n {
        symbols[out] = symbols[i]; out += 1
        i = Int(next[i])
    }
    symbols.removeLast(n - out)
    return out
}

/// Binary min-heap of packed (rank << 32 | position) keys.
struct MinHeap {
    private var a: [UInt64] = []
    mutating func push(_ x: UInt64) {
        a.append(x)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if a[p] <= a[i] { break }
            a.swapAt(p, i); i = p
        }
    }
    mutating func pop() -> UInt64? {
        guard let top = a.first else { return nil }
        let last = a.removeLast()
        if a.isEmpty { return top }
        a[0] = last
        var i = 0
        let n = a.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && a[l] < a[m] { m = l }
            if r < n && a[r] < a[m] { m = r }
            if m == i { break }
            a.swapAt(m, i); i = m
        }
        return top
    }
}

/// Cache from a pre-tokenized word's bytes to its ids. Most text repeats a small set of words,
/// so after warm-up nearly every word is a hash and a memcmp instead of a merge loop.
/// Keys and ids live in two flat arenas; the table is cleared wholesale when full (HF's cache
/// likewise just stops caching at capacity), which keeps memory bounded on endless input.
struct WordCache {
    private var slots: [Int32]          // entry index or -1
    private var hashes: [UInt64] = []
    private var keyStart: [Int32] = []
    private var idStart: [Int32] = []   // ids of entry e: idArena[idStart[e] ..< idStart[e + 1]]
    private var keyArena: [UInt8] = []
    private var idArena: [UInt32] = []
    private let mask: Int
    static let maxEntries = 1 << 16
    static let maxWordBytes = 128

    init() {
        slots = [Int32](repeating: -1, count: WordCache.maxEntries * 2)
        mask = WordCache.maxEntries * 2 - 1
        keyStart = [0]
        idStart = [0]
    }

    @inline(__always) static func hash(_ w: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 ^ UInt64(w.count)
        var i = 0
        let n = w.count
        let raw = UnsafeRawPointer(w.baseAddress!)
        while i + 8 <= n {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n { tail |= UInt64(w[i]) << shift; shift += 8; i += 1 }
        h = (h ^ tail) &* 0x9E37_79B9_7F4A_7C15
        return h ^ (h >> 32)
    }

    /// Appends the cached ids for `word` to `out` and returns true, or returns false.
    @inline(__always) func lookup(_ word: UnsafeBufferPointer<UInt8>, _ h: UInt64, into out: inout [UInt32]) -> Bool {
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let e = Int(slots[i])
            if e < 0 { return false }
            if hashes[e] == h {
                let ks = Int(keyStart[e]), ke = Int(keyStart[e + 1])
                if ke - ks == word.count && keyArena.withUnsafeBufferPointer({
                    memcmpEqual($0.baseAddress! + ks, word.baseAddress!, word.count)
                }) {
                    idArena.withUnsafeBufferPointer { ids in
                        out.append(contentsOf: ids[Int(idStart[e]) ..< Int(idStart[e + 1])])
                    }
                    return true
                }
            }
            i = (i + 1) & mask
        }
    }

    mutating func insert(_ word: UnsafeBufferPointer<UInt8>, _ h: UInt64, _ ids: ArraySlice<UInt32>) {
        if word.count > WordCache.maxWordBytes { return }
        if hashes.count >= WordCache.maxEntries { self = WordCache() }
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] >= 0 { i = (i + 1) & mask }
        slots[i] = Int32(hashes.count)
        hashes.append(h)
        keyArena.append(contentsOf: word)
        keyStart.append(Int32(keyArena.count))
        idArena.append(contentsOf: ids)
        idStart.append(Int32(idArena.count))
    }
}

@inline(__always) private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    var i = 0
    while i < n { if a[i] != b[i] { return false }; i += 1 }
    return true
}
