/// The SentencePiece-style BPE path (Gemma 2), as HF `tokenizers` runs it from tokenizer.json:
///
/// - normalizer Replace(" " → "▁") on the text between added tokens;
/// - no pre-tokenizer, so each such stretch is one BPE word, however long;
/// - the word starts as one symbol per character, or the character's `<0xNN>` tokens when the
///   vocabulary lacks it (`byte_fallback`), then merges by rank exactly as `bpeMerge` does for
///   byte-level words (lowest rank first, leftmost on ties);
/// - decoding maps "▁" to " " per token, turns each run of `<0xNN>` tokens into its bytes when
///   they are valid UTF-8 and into one U+FFFD per byte when not (HF's ByteFallback), and joins.
extension BPETokenizer {
    /// Encodes one stretch of raw text (no added tokens in it). `offsets`, when given, receives
    /// each token's start as a byte offset into the original text (not the normalized one), so
    /// chat masks can index the rendered pieces.
    func encodeSentencePieceSegment(_ seg: UnsafeBufferPointer<UInt8>, base: Int, _ ids: inout [UInt32],
                                    _ offsets: UnsafeMutablePointer<[Int32]>?) {
        var norm: [UInt8] = []
        norm.reserveCapacity(seg.count + seg.count / 2)
        var origin: [Int32] = []
        if offsets != nil { origin.reserveCapacity(seg.count + seg.count / 2 + 1) }
        for i in 0..<seg.count {
            let b = seg[i]
            if b == 0x20 {
                norm.append(0xE2); norm.append(0x96); norm.append(0x81)
                if offsets != nil { let o = Int32(base + i); origin.append(o); origin.append(o); origin.append(o) }
            } else {
                norm.append(b)
                if offsets != nil { origin.append(Int32(base + i)) }
            }
        }
        if offsets != nil { origin.append(Int32(base + seg.count)) }
        norm.withUnsafeBufferPointer { nb in
            var pos = 0
            // Added tokens marked `normalized` match in the normalized text.
            while pos < nb.count {
                let m = normalizedMatcher.isEmpty ? nil : normalizedMatcher.firstMatch(in: nb, from: pos)
                let end = m?.start ?? nb.count
                if end > pos { encodeSentencePieceWord(nb, pos, end, origin, &ids, offsets) }
                guard let m else { break }
                ids.append(UInt32(m.id))
                offsets?.pointee.append(origin[m.start])
                pos = m.end
            }
        }
    }

    /// BPE on `nb[from..<to]` (normalized text) as one word.
    private func encodeSentencePieceWord(_ nb: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int, _ origin: [Int32],
                                         _ ids: inout [UInt32], _ offsets: UnsafeMutablePointer<[Int32]>?) {
        guard let charVocab else { return }
        var symbols: [UInt32] = []
        symbols.reserveCapacity(to - from)
        var p = from
        while p < to {
            let b0 = nb[p]
            let len = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4
            if let id = charVocab.lookup(UnsafeBufferPointer(rebasing: nb[p..<(p + len)])) {
                symbols.append(UInt32(id))
            } else {
                for q in p..<(p + len) { symbols.append(byteIDs[Int(nb[q])]) }
            }
            p += len
        }
        let n = bpeMerge(&symbols, merges)
        let first = ids.count
        ids.append(contentsOf: symbols[0..<n])
        if let offsets {
            // A token covers as many normalized bytes as its vocabulary spelling: one for a
            // `<0xNN>` token, else its decoded bytes with each space counted as the 3-byte "▁".
            var at = from
            for t in first..<ids.count {
                offsets.pointee.append(origin[at])
                at += normalizedLength(Int(ids[t]))
            }
        }
    }

    private func normalizedLength(_ id: Int) -> Int {
        if byteValue[id] >= 0 { return 1 }
        var n = 0
        for k in Int(tokenStart[id])..<Int(tokenStart[id + 1]) { n += tokenBytes[k] == 0x20 ? 3 : 1 }
        return n
    }

    /// One id of a SentencePiece decode: `<0xNN>` bytes gather in `run`, anything else first
    /// flushes the run. Skipped special tokens do not end a run (HF drops them before decoding).
    func appendSentencePieceBytes(of id: Int, skipSpecialTokens: Bool, run: inout [UInt8],
                                  to out: inout [UInt8]) throws(TokenizerError) {
        guard id >= 0, id < vocabularySize, tokenExists[id] else {
            throw .idOutOfRange(id: id, vocabularySize: vocabularySize)
        }
        if skipSpecialTokens && isSpecial[id] { return }
        let v = byteValue[id]
        if v >= 0 { run.append(UInt8(v)); return }
        flushByteRun(&run, to: &out)
        out.append(contentsOf: tokenBytes[Int(tokenStart[id]) ..< Int(tokenStart[id + 1])])
    }

    /// HF ByteFallback: a run of byte tokens is its bytes when they form valid UTF-8, else one
    /// U+FFFD per byte.
    func flushByteRun(_ run: inout [UInt8], to out: inout [UInt8]) {
        if run.isEmpty { return }
        let invalid = run.withUnsafeBufferPointer { firstInvalidUTF8Offset($0) } != nil
        if invalid {
            for _ in run { out.append(0xEF); out.append(0xBF); out.append(0xBD) }
        } else {
            out.append(contentsOf: run)
        }
        run.removeAll(keepingCapacity: true)
    }
}
