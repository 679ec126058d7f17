/// Turns ids into text as they are generated. A character can span several tokens (most CJK
/// characters and emoji do in byte-level BPE), so a token's bytes may end in the middle of a
/// UTF-8 sequence; those bytes are held back until the sequence completes, so the text shown
/// never contains a broken character that a later token would have fixed.
///
/// For SentencePiece tokenizers (Gemma 2) a run of `<0xNN>` byte tokens is held until a
/// token of another kind ends it: HF decides per whole run whether it is text or U+FFFDs.
///
/// The concatenation of everything `append` and `finish` return equals `decode` of all ids.
public struct StreamingDecoder: Sendable {
    private let tokenizer: BPETokenizer
    private let skipSpecialTokens: Bool
    private var pending: [UInt8] = []
    /// SentencePiece only: the byte tokens of the current run.
    private var byteRun: [UInt8] = []

    init(tokenizer: BPETokenizer, skipSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one id and returns the text that is now complete (possibly empty).
    public mutating func append(_ id: Int) throws(TokenizerError) -> String {
        if tokenizer.kind == .sentencePiece {
            // Flushed runs and token texts are always whole UTF-8, so nothing else is held.
            var out: [UInt8] = []
            try tokenizer.appendSentencePieceBytes(of: id, skipSpecialTokens: skipSpecialTokens, run: &byteRun, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        try tokenizer.appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &pending)
        let hold = incompleteUTF8TailLength(pending)
        let emit = pending.count - hold
        if emit == 0 { return "" }
        let text = String(decoding: pending[0..<emit], as: UTF8.self)
        pending.removeFirst(emit)
        return text
    }

    /// Returns whatever is still held back (an unfinished sequence becomes U+FFFD, as `decode`
    /// would render it) and resets the decoder.
    public mutating func finish() -> String {
        tokenizer.flushByteRun(&byteRun, to: &pending)
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}

/// A UTF-8 lead byte's sequence length and the range its second byte must fall in (the ranges
/// that exclude overlong forms, surrogates and code points past U+10FFFF); nil for ASCII,
/// continuation bytes and bytes that can never lead.
@inline(__always)
func utf8Lead(_ b: UInt8) -> (length: Int, secondLow: UInt8, secondHigh: UInt8)? {
    switch b {
    case 0xC2...0xDF: return (2, 0x80, 0xBF)
    case 0xE0: return (3, 0xA0, 0xBF)
    case 0xE1...0xEC, 0xEE...0xEF: return (3, 0x80, 0xBF)
    case 0xED: return (3, 0x80, 0x9F)
    case 0xF0: return (4, 0x90, 0xBF)
    case 0xF1...0xF3: return (4, 0x80, 0xBF)
    case 0xF4: return (4, 0x80, 0x8F)
    default: return nil
    }
}

/// How many trailing bytes form a *valid but unfinished* UTF-8 sequence. Only such a prefix is
/// held: it is the one case where later bytes change how earlier ones decode. An invalid tail
/// decodes to U+FFFD whatever follows, so emitting it now gives the same text as decoding all.
func incompleteUTF8TailLength(_ bytes: [UInt8]) -> Int {
    let n = bytes.count
    var k = 1
    while k <= min(3, n) {
        let b = bytes[n - k]
        if b & 0xC0 == 0x80 { k += 1; continue } // continuation byte: keep looking for the lead
        guard let (need, lo, hi) = utf8Lead(b) else { return 0 } // ASCII or an invalid lead byte
        guard k < need else { return 0 } // the sequence is complete (or overlong: invalid anyway)
        if k >= 2 {
            let second = bytes[n - k + 1]
            if second < lo || second > hi { return 0 }
        }
        return k
    }
    return 0
}
