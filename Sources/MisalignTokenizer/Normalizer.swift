/// Unicode NFC exactly as HF's `NFC` normalizer computes it.
///
/// Not Foundation's `precomposedStringWithCanonicalMapping`: HF normalizes with Unicode 9.0
/// data, and marks assigned since then (U+0D3B, U+1DFA, …) are starters to HF but combining
/// marks to any current library, which reorders them and changes the ids. The tables in
/// `UnicodeTables.swift` are read off HF's own normalizer (make_unicode_tables.py).
struct NFCData: Sendable {
    let combiningClass: [UInt32: UInt8]
    let decompositionIndex: [UInt32: (start: Int32, count: Int32)]
    let decompositionData: [UInt32]
    let composition: [UInt64: UInt32]
    /// Bit set over all code points: 1 = "inert", i.e. class 0, unchanged by NFC, and never
    /// the second half of a composition. Text made only of inert code points is already NFC.
    let inert: [UInt64]

    static let shared = NFCData()

    private init() {
        var ccc: [UInt32: UInt8] = [:]
        var i = 0
        while i < nfcCombiningClasses.count {
            ccc[nfcCombiningClasses[i]] = UInt8(nfcCombiningClasses[i + 1]); i += 2
        }
        combiningClass = ccc
        var index: [UInt32: (start: Int32, count: Int32)] = [:]
        var data: [UInt32] = []
        i = 0
        while i < nfcDecompositions.count {
            let cp = nfcDecompositions[i], n = Int(nfcDecompositions[i + 1])
            index[cp] = (Int32(data.count), Int32(n))
            data.append(contentsOf: nfcDecompositions[(i + 2)..<(i + 2 + n)])
            i += 2 + n
        }
        decompositionIndex = index
        decompositionData = data
        var comp: [UInt64: UInt32] = [:]
        i = 0
        while i < nfcCompositions.count {
            comp[UInt64(nfcCompositions[i]) << 32 | UInt64(nfcCompositions[i + 1])] = nfcCompositions[i + 2]; i += 3
        }
        composition = comp
        var bits = [UInt64](repeating: ~0, count: 0x110000 / 64)
        i = 0
        while i < nfcNonInertRanges.count {
            for c in nfcNonInertRanges[i]...nfcNonInertRanges[i + 1] { bits[Int(c >> 6)] &= ~(1 << UInt64(c & 63)) }
            i += 2
        }
        inert = bits
    }

    @inline(__always) func isInert(_ c: UInt32) -> Bool { inert[Int(c >> 6)] >> UInt64(c & 63) & 1 == 1 }
    @inline(__always) func ccc(_ c: UInt32) -> UInt8 { c < 0x300 ? 0 : combiningClass[c] ?? 0 }
}

// Hangul syllables are composed and decomposed by arithmetic (Unicode §3.12).
private let hangulSBase: UInt32 = 0xAC00, hangulLBase: UInt32 = 0x1100, hangulVBase: UInt32 = 0x1161
private let hangulTBase: UInt32 = 0x11A7, hangulTCount: UInt32 = 28, hangulNCount: UInt32 = 588, hangulSCount: UInt32 = 11172

/// True when NFC would leave the UTF-8 text unchanged because every scalar is inert
/// (ASCII is checked without decoding, so plain English costs one pass over the bytes).
func isTriviallyNFC(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    let data = NFCData.shared
    var p = 0
    let n = bytes.count
    while p < n {
        let b0 = UInt32(bytes[p])
        if b0 < 0x80 { p += 1; continue }
        var c: UInt32
        if b0 < 0xE0 { c = (b0 & 0x1F) << 6 | UInt32(bytes[p + 1] & 0x3F); p += 2 }
        else if b0 < 0xF0 {
            c = (b0 & 0x0F) << 12 | UInt32(bytes[p + 1] & 0x3F) << 6 | UInt32(bytes[p + 2] & 0x3F); p += 3
        } else {
            c = (b0 & 0x07) << 18 | UInt32(bytes[p + 1] & 0x3F) << 12 | UInt32(bytes[p + 2] & 0x3F) << 6
                | UInt32(bytes[p + 3] & 0x3F); p += 4
        }
        if !data.isInert(c) { return false }
    }
    return true
}

/// NFC of valid UTF-8 bytes, as UTF-8 bytes: full canonical decomposition, canonical ordering
/// of each run of marks (a stable sort by class), then canonical composition (UAX #15).
func nfcNormalize(_ bytes: UnsafeBufferPointer<UInt8>) -> [UInt8] {
    let data = NFCData.shared
    var d: [UInt32] = []
    d.reserveCapacity(bytes.count)
    for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
        let c = scalar.value
        if c >= hangulSBase && c < hangulSBase + hangulSCount {
            let s = c - hangulSBase
            d.append(hangulLBase + s / hangulNCount)
            d.append(hangulVBase + (s % hangulNCount) / hangulTCount)
            if s % hangulTCount != 0 { d.append(hangulTBase + s % hangulTCount) }
        } else if c >= 0xC0, let e = data.decompositionIndex[c] {
            d.append(contentsOf: data.decompositionData[Int(e.start)..<Int(e.start + e.count)])
        } else {
            d.append(c)
        }
    }
    // Canonical ordering: insertion sort inside runs of non-starters (runs are short).
    var i = 1
    while i < d.count {
        let k = data.ccc(d[i])
        if k != 0 {
            var j = i
            while j > 0, case let kj = data.ccc(d[j - 1]), kj > k { d.swapAt(j, j - 1); j -= 1 }
        }
        i += 1
    }
    // Composition.
    var out: [UInt32] = []
    out.reserveCapacity(d.count)
    var starter = -1
    var lastClass: Int = -1
    for c in d {
        let k = Int(data.ccc(c))
        if starter >= 0 && (lastClass < k || lastClass == 0), let composite = compose(out[starter], c, data) {
            out[starter] = composite
            continue
        }
        if k == 0 { starter = out.count }
        // A mark with no starter before it blocks nothing but also has nothing to join.
        lastClass = starter < 0 ? 256 : k
        out.append(c)
    }
    var s = String.UnicodeScalarView()
    for c in out { s.append(Unicode.Scalar(c)!) }
    return Array(String(s).utf8)
}

@inline(__always)
private func compose(_ a: UInt32, _ b: UInt32, _ data: NFCData) -> UInt32? {
    if a >= hangulLBase && a < hangulLBase + 19 && b >= hangulVBase && b < hangulVBase + 21 {
        return hangulSBase + ((a - hangulLBase) * 21 + (b - hangulVBase)) * hangulTCount
    }
    if a >= hangulSBase && a < hangulSBase + hangulSCount && (a - hangulSBase) % hangulTCount == 0
        && b > hangulTBase && b < hangulTBase + hangulTCount {
        return a + (b - hangulTBase)
    }
    return data.composition[UInt64(a) << 32 | UInt64(b)]
}

/// NFC of a Swift string with HF's data (used where text is normalized outside the encoder).
func hfNFC(_ s: String) -> String {
    var s = s
    return s.withUTF8 { u in
        isTriviallyNFC(u) ? String(decoding: u, as: UTF8.self) : String(decoding: nfcNormalize(u), as: UTF8.self)
    }
}
