/// The Qwen2 pre-tokenizer: HF `Split` with this pattern, behaviour `Isolated`. Llama 3 uses the
/// same pattern with `\p{N}{1,3}` in place of `\p{N}` (`llama3SplitPattern`): digits go in runs
/// of up to three, counted from the left ("12345" is "123", "45"); the scan takes the run length
/// as a parameter and is otherwise the same.
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// Implemented by hand as a left-to-right scan instead of a regex engine: every alternative is
/// decided by the class of at most two code points plus the extent of one run, so the scan is
/// linear and needs no backtracking. Matches never overlap and cover the whole text (the last
/// alternative `\s+` and the others together accept any code point), so "Isolated" splitting is
/// just the sequence of matches.
let qwen2SplitPattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

/// Llama 3's split pattern: Qwen2's with digit runs of up to three.
let llama3SplitPattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

/// Which hand-written split a byte-level tokenizer uses, named by its tokenizer.json pattern.
enum SplitPattern: Sendable, Equatable {
    /// `\p{N}`: one digit per piece (Qwen2, Qwen2.5).
    case qwen2
    /// `\p{N}{1,3}`: up to three digits per piece (Llama 3.x).
    case llama3

    /// The most digits one piece holds.
    var digitRun: Int { self == .qwen2 ? 1 : 3 }
}

/// Reusable buffers for one encode call, so the hot path allocates nothing per word.
struct PreTokenizerScratch {
    var scalars: [UInt32] = []
    var classes: [UInt8] = []
    /// Byte offset of each scalar, plus one trailing entry for the end of the text.
    var offsets: [Int32] = []
    /// Piece boundaries as scalar indices: piece k is `pieceStarts[k] ..< pieceStarts[k+1]`.
    var pieceStarts: [Int32] = []
}

/// Lowercases the letters that can appear in a contraction. Oniguruma's `(?i:)` uses Unicode
/// case folding, which also folds a few non-ASCII letters (U+017F LONG S to "s"); the list comes
/// from the engine via `qwenContractionFolds`.
@inline(__always)
private func contractionFold(_ c: UInt32) -> UInt32 {
    if c >= 0x41 && c <= 0x5A { return c | 0x20 }
    if c < 0x80 { return c }
    for (cp, letter) in qwenContractionFolds where cp == c { return UInt32(letter) }
    return c
}

/// Length in scalars of a contraction starting at `i` (which holds an apostrophe), or 0.
@inline(__always)
private func contractionLength(_ s: UnsafeBufferPointer<UInt32>, _ i: Int) -> Int {
    let n = s.count
    guard i + 1 < n else { return 0 }
    let a = contractionFold(s[i + 1])
    switch a {
    case 0x73, 0x74, 0x6D, 0x64: return 2 // 's 't 'm 'd
    case 0x72, 0x76: // 're 've
        return i + 2 < n && contractionFold(s[i + 2]) == 0x65 ? 3 : 0
    case 0x6C: // 'll
        return i + 2 < n && contractionFold(s[i + 2]) == 0x6C ? 3 : 0
    default: return 0
    }
}

/// Decodes `bytes` (valid UTF-8) into scalars, classes and offsets, then splits it into pieces.
/// Results are left in `scratch`; returns the number of pieces.
func qwen2PreTokenize(_ bytes: UnsafeBufferPointer<UInt8>, _ scratch: inout PreTokenizerScratch,
                      digitRun: Int = 1) -> Int {
    scratch.scalars.removeAll(keepingCapacity: true)
    scratch.classes.removeAll(keepingCapacity: true)
    scratch.offsets.removeAll(keepingCapacity: true)
    scratch.pieceStarts.removeAll(keepingCapacity: true)
    let table = qwenCharClass
    var p = 0
    let count = bytes.count
    while p < count {
        let b0 = UInt32(bytes[p])
        var c: UInt32
        var len: Int
        // Input comes from a Swift String (or was validated), so sequences are well formed.
        if b0 < 0x80 { c = b0; len = 1 }
        else if b0 < 0xE0 { c = (b0 & 0x1F) << 6 | UInt32(bytes[p + 1] & 0x3F); len = 2 }
        else if b0 < 0xF0 {
            c = (b0 & 0x0F) << 12 | UInt32(bytes[p + 1] & 0x3F) << 6 | UInt32(bytes[p + 2] & 0x3F); len = 3
        } else {
            c = (b0 & 0x07) << 18 | UInt32(bytes[p + 1] & 0x3F) << 12 | UInt32(bytes[p + 2] & 0x3F) << 6
                | UInt32(bytes[p + 3] & 0x3F); len = 4
        }
        scratch.scalars.append(c)
        scratch.classes.append(table[Int(c)])
        scratch.offsets.append(Int32(p))
        p += len
    }
    scratch.offsets.append(Int32(count))
    let n = scratch.scalars.count
    scratch.scalars.withUnsafeBufferPointer { s in
        scratch.classes.withUnsafeBufferPointer { k in
            splitQwen2(s, k, digitRun, &scratch.pieceStarts)
        }
    }
    scratch.pieceStarts.append(Int32(n))
    return scratch.pieceStarts.count - 1
}

/// The pattern's alternatives in order; comments name the alternative each branch takes.
/// `digitRun` is the `{1,k}` bound of the number alternative (1 for Qwen2, 3 for Llama 3).
private func splitQwen2(_ s: UnsafeBufferPointer<UInt32>, _ k: UnsafeBufferPointer<UInt8>, _ digitRun: Int,
                        _ starts: inout [Int32]) {
    let n = s.count
    let L = CharClass.letter, N = CharClass.number, S = CharClass.space, O = CharClass.other
    @inline(__always) func isNL(_ c: UInt32) -> Bool { c == 0x0A || c == 0x0D }
    var i = 0
    while i < n {
        starts.append(Int32(i))
        let c = s[i], cls = k[i]
        var j: Int
        if c == 0x27, case let m = contractionLength(s, i), m > 0 {
            j = i + m // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        } else if cls == L {
            j = i + 1 // [^\r\n\p{L}\p{N}]?\p{L}+ with the optional part empty
            while j < n && k[j] == L { j += 1 }
        } else if cls == N {
            j = i + 1 // \p{N}{1,digitRun}: greedy, so runs are cut every digitRun digits from the left
            while j < n && j - i < digitRun && k[j] == N { j += 1 }
        } else if !isNL(c) && i + 1 < n && k[i + 1] == L {
            j = i + 2 // [^\r\n\p{L}\p{N}]\p{L}+ : one leading space/punctuation joins the word
            while j < n && k[j] == L { j += 1 }
        } else if cls == O || (c == 0x20 && i + 1 < n && k[i + 1] == O) {
            j = cls == O ? i + 1 : i + 2 // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            while j < n && k[j] == O { j += 1 }
            while j < n && isNL(s[j]) { j += 1 }
        } else {
            // cls == S. Find the whole whitespace run and its last line break.
            var e = i
            var lastNL = -1
            while e < n && k[e] == S {
                if isNL(s[e]) { lastNL = e }
                e += 1
            }
            if lastNL >= 0 {
                j = lastNL + 1 // \s*[\r\n]+ : backtracks to end at the last line break
            } else if e == n || e - i == 1 {
                j = e // \s+(?!\S) at the end of text, or \s+ for a lone space before a word
            } else {
                j = e - 1 // \s+(?!\S): leave the last space to prefix the next word
            }
        }
        i = j
    }
}
