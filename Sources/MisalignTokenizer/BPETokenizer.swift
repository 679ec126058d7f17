import Foundation
import Synchronization

/// Hugging Face BPE tokenizers loaded from the model's own `tokenizer.json` and
/// `tokenizer_config.json`: byte-level BPE (Qwen2 / Qwen2.5, Llama 3.x) and SentencePiece-style
/// BPE with byte fallback (Gemma 2). Produces the same ids as HF `tokenizers`.
///
/// Thread-safe: the vocabulary and merges are immutable; the word cache is guarded by a lock
/// that encode only *tries* to take, so concurrent callers never wait on each other — a caller
/// that finds it busy uses a private cache for that call.
public final class BPETokenizer: Tokenizer, Sendable {
    public let vocabularySize: Int
    public let specialTokenIDs: [String: Int]
    public let eosTokenID: Int?
    public let padTokenID: Int?
    public let bosTokenID: Int?
    /// The added tokens of tokenizer.json, in file order.
    public let addedTokens: [AddedToken]
    /// The `chat_template` text of tokenizer_config.json, if any (rendered natively; see ChatTemplate).
    public let chatTemplateSource: String?
    /// The system prompt the template inserts when a conversation has none.
    public let defaultSystemPrompt: String?
    /// The chat template family `chatTemplateSource` was recognised as; nil when it is none of
    /// them (rendering then throws `TokenizerError.unknownChatTemplate`). A tokenizer_config.json
    /// without a `chat_template` (or no config at all) renders ChatML, as before families existed.
    public let chatTemplateFamily: ChatTemplateFamily?
    /// Ids the tokenizer.json post-processor (TemplateProcessing) puts before one sequence when
    /// special tokens are added: `[<|begin_of_text|>]` for Llama 3, `[<bos>]` for Gemma 2, none
    /// for Qwen2. `encode(_:)` never adds them; `encode(_:addSpecialTokens: true)` does.
    public let specialTokensPrefix: [Int]
    /// Ids the post-processor puts after one sequence (none for Qwen2, Llama 3 and Gemma 2).
    public let specialTokensSuffix: [Int]

    let merges: MergeTable
    /// Vocabulary id of each raw byte (the byte-level alphabet).
    let byteIDs: [UInt32]
    /// Raw bytes of token `id`: `tokenBytes[tokenStart[id] ..< tokenStart[id + 1]]`; empty for gaps.
    let tokenBytes: [UInt8]
    let tokenStart: [Int32]
    let tokenExists: [Bool]
    let isSpecial: [Bool]
    let tokenToID: VocabTable
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher
    let applyNFC: Bool
    /// Only for `ignore_merges`: whole words found in the vocabulary bypass merging.
    let wholeWordIDs: [[UInt8]: UInt32]?
    let kind: TokenizerKind
    /// SentencePiece only (see `TokenizerParts`).
    let byteValue: [Int16]
    let charVocab: VocabTable?
    let chatTemplate: ChatTemplateSpec?
    let configFile: String
    let modelName: String
    /// The text of tokenizer_config.json's `bos_token`, which templates write as `bos_token`.
    let bosToken: String?

    private let sharedCache = Mutex(WordCache())

    init(parts: TokenizerParts) {
        vocabularySize = parts.vocabularySize
        merges = parts.merges
        byteIDs = parts.byteIDs
        tokenBytes = parts.tokenBytes
        tokenStart = parts.tokenStart
        tokenExists = parts.tokenExists
        tokenToID = parts.tokenToID
        addedTokens = parts.addedTokens
        applyNFC = parts.applyNFC
        wholeWordIDs = parts.wholeWordIDs
        var special = [Bool](repeating: false, count: parts.vocabularySize)
        var specials: [String: Int] = [:]
        for t in parts.addedTokens where t.special { special[t.id] = true; specials[t.content] = t.id }
        isSpecial = special
        specialTokenIDs = specials
        rawMatcher = AddedTokenMatcher(parts.addedTokens.filter { !$0.normalized }.map { ($0.content, $0.id) })
        // HF matches `normalized` added tokens in normalized text by their normalized content.
        let sentencePiece = parts.kind == .sentencePiece, nfc = parts.applyNFC
        func normalize(_ s: String) -> String {
            if sentencePiece { return s.replacingOccurrences(of: " ", with: metaspace) }
            return nfc ? hfNFC(s) : s
        }
        normalizedMatcher = AddedTokenMatcher(parts.addedTokens.filter { $0.normalized }.map { (normalize($0.content), $0.id) })
        eosTokenID = parts.eosToken.flatMap { parts.tokenToID.lookup($0) }
        padTokenID = parts.padToken.flatMap { parts.tokenToID.lookup($0) }
        bosTokenID = parts.bosToken.flatMap { parts.tokenToID.lookup($0) }
        chatTemplateSource = parts.chatTemplate
        defaultSystemPrompt = parts.defaultSystemPrompt
        kind = parts.kind
        byteValue = parts.byteValue
        charVocab = parts.charVocab
        specialTokensPrefix = parts.specialPrefix
        specialTokensSuffix = parts.specialSuffix
        chatTemplate = ChatTemplateSpec(source: parts.chatTemplate)
        chatTemplateFamily = chatTemplate?.family
        configFile = parts.configFile
        modelName = parts.modelName
        bosToken = parts.bosToken
    }

    public func tokenID(for token: String) -> Int? { tokenToID.lookup(token) }

    /// The raw bytes token `id` decodes to, or nil when the id does not exist.
    public func tokenBytes(for id: Int) -> [UInt8]? {
        guard id >= 0, id < vocabularySize, tokenExists[id] else { return nil }
        return Array(tokenBytes[Int(tokenStart[id]) ..< Int(tokenStart[id + 1])])
    }

    // MARK: Encoding

    public func encode(_ text: String) -> [Int] {
        var ids: [UInt32] = []
        var text = text
        text.withUTF8 { encodeValidUTF8($0, into: &ids, offsets: nil) }
        return ids.map { Int($0) }
    }

    /// Ids for `text`, with the post-processor's special tokens around them when
    /// `addSpecialTokens` is true — transformers' `tokenizer(text)`, which for Llama 3 and Gemma 2
    /// starts with BOS. Chat templates already write BOS into their text, so
    /// `applyChatTemplate` tokenizes without them, as transformers does.
    public func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        let ids = encode(text)
        return addSpecialTokens ? specialTokensPrefix + ids + specialTokensSuffix : ids
    }

    /// Encodes raw bytes, which must be valid UTF-8 (HF accepts only Rust strings, so there is
    /// no HF behaviour to copy for anything else, and guessing a repair would hide bad input).
    public func encode(utf8 data: Data) throws(TokenizerError) -> [Int] {
        let result: Result<[Int], TokenizerError> = data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            if let bad = firstInvalidUTF8Offset(bytes) { return .failure(.invalidUTF8(offset: bad)) }
            var ids: [UInt32] = []
            encodeValidUTF8(bytes, into: &ids, offsets: nil)
            return .success(ids.map { Int($0) })
        }
        return try result.get()
    }

    /// The encoder proper. When `offsets` is given, it receives each token's start as a byte
    /// offset — into the input for text that is already NFC, into the normalized text otherwise.
    func encodeValidUTF8(_ bytes: UnsafeBufferPointer<UInt8>, into ids: inout [UInt32], offsets: UnsafeMutablePointer<[Int32]>?) {
        withCache { cache in
            var scratch = PreTokenizerScratch()
            var pos = 0
            // Added tokens are found in the raw text first and never reach the normalizer or
            // the pre-tokenizer: "<|im_end|>" must stay one id even inside a word.
            while pos < bytes.count {
                let m = rawMatcher.firstMatch(in: bytes, from: pos)
                let segEnd = m?.start ?? bytes.count
                if segEnd > pos {
                    encodeSegment(UnsafeBufferPointer(rebasing: bytes[pos..<segEnd]), base: pos,
                                  &cache, &scratch, &ids, offsets)
                }
                guard let m else { break }
                ids.append(UInt32(m.id))
                offsets?.pointee.append(Int32(m.start))
                pos = m.end
            }
        }
    }

    private func encodeSegment(_ seg: UnsafeBufferPointer<UInt8>, base: Int, _ cache: inout WordCache,
                               _ scratch: inout PreTokenizerScratch, _ ids: inout [UInt32],
                               _ offsets: UnsafeMutablePointer<[Int32]>?) {
        if kind == .sentencePiece {
            encodeSentencePieceSegment(seg, base: base, &ids, offsets)
            return
        }
        if applyNFC && !isTriviallyNFC(seg) {
            let normalized = nfcNormalize(seg)
            normalized.withUnsafeBufferPointer { encodeNormalized($0, base: base, &cache, &scratch, &ids, offsets) }
        } else {
            encodeNormalized(seg, base: base, &cache, &scratch, &ids, offsets)
        }
    }

    /// Splits normalized text on added tokens that match after normalization (none in Qwen2.5).
    private func encodeNormalized(_ seg: UnsafeBufferPointer<UInt8>, base: Int, _ cache: inout WordCache,
                                  _ scratch: inout PreTokenizerScratch, _ ids: inout [UInt32],
                                  _ offsets: UnsafeMutablePointer<[Int32]>?) {
        if normalizedMatcher.isEmpty {
            encodeWords(seg, base: base, &cache, &scratch, &ids, offsets)
            return
        }
        var pos = 0
        while pos < seg.count {
            let m = normalizedMatcher.firstMatch(in: seg, from: pos)
            let end = m?.start ?? seg.count
            if end > pos {
                encodeWords(UnsafeBufferPointer(rebasing: seg[pos..<end]), base: base + pos, &cache, &scratch, &ids, offsets)
            }
            guard let m else { break }
            ids.append(UInt32(m.id))
            offsets?.pointee.append(Int32(base + m.start))
            pos = m.end
        }
    }

    /// Pre-tokenizes, then BPE-merges each piece (through the word cache).
    private func encodeWords(_ seg: UnsafeBufferPointer<UInt8>, base: Int, _ cache: inout WordCache,
                             _ scratch: inout PreTokenizerScratch, _ ids: inout [UInt32],
                             _ offsets: UnsafeMutablePointer<[Int32]>?) {
        let pieces = qwen2PreTokenize(seg, &scratch, digitRun: kind == .byteLevel(.llama3) ? 3 : 1)
        var symbols: [UInt32] = []
        for k in 0..<pieces {
            let a = Int(scratch.offsets[Int(scratch.pieceStarts[k])])
            let b = Int(scratch.offsets[Int(scratch.pieceStarts[k + 1])])
            let word = UnsafeBufferPointer(rebasing: seg[a..<b])
            let first = ids.count
            appendWordIDs(word, &cache, &symbols, &ids)
            if let offsets {
                var at = base + a
                for t in first..<ids.count {
                    offsets.pointee.append(Int32(at))
                    at += Int(tokenStart[Int(ids[t]) + 1] - tokenStart[Int(ids[t])])
                }
            }
        }
    }

    @inline(__always)
    private func appendWordIDs(_ word: UnsafeBufferPointer<UInt8>, _ cache: inout WordCache,
                               _ symbols: inout [UInt32], _ ids: inout [UInt32]) {
        if word.count == 1 { ids.append(byteIDs[Int(word[0])]); return }
        if let wholeWordIDs, let id = wholeWordIDs[Array(word)] { ids.append(id); return }
        let h = WordCache.hash(word)
        if cache.lookup(word, h, into: &ids) { return }
        symbols.removeAll(keepingCapacity: true)
        for byte in word { symbols.append(byteIDs[Int(byte)]) }
        let n = bpeMerge(&symbols, merges)
        ids.append(contentsOf: symbols[0..<n])
        cache.insert(word, h, symbols[0..<n])
    }

    private func withCache<R: Sendable>(_ body: (inout WordCache) -> R) -> R {
        if let r = sharedCache.withLockIfAvailable({ body(&$0) }) { return r }
        var local = WordCache()
        return body(&local)
    }

    // MARK: Decoding

    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws(TokenizerError) -> String {
        let bytes = try decodeBytes(ids, skipSpecialTokens: skipSpecialTokens)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The raw bytes of `ids` before UTF-8 decoding (the ByteLevel decoder's output).
    public func decodeBytes(_ ids: [Int], skipSpecialTokens: Bool = false) throws(TokenizerError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        if kind == .sentencePiece {
            var run: [UInt8] = []
            for id in ids { try appendSentencePieceBytes(of: id, skipSpecialTokens: skipSpecialTokens, run: &run, to: &out) }
            flushByteRun(&run, to: &out)
            return out
        }
        for id in ids { try appendBytes(of: id, skipSpecialTokens: skipSpecialTokens, to: &out) }
        return out
    }

    func appendBytes(of id: Int, skipSpecialTokens: Bool, to out: inout [UInt8]) throws(TokenizerError) {
        guard id >= 0, id < vocabularySize, tokenExists[id] else {
            throw .idOutOfRange(id: id, vocabularySize: vocabularySize)
        }
        if skipSpecialTokens && isSpecial[id] { return }
        out.append(contentsOf: tokenBytes[Int(tokenStart[id]) ..< Int(tokenStart[id + 1])])
    }

    /// A decoder that turns ids into text one at a time, for showing generation as it happens.
    public func streamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }
}

/// Offset of the first byte that is not part of a well-formed UTF-8 sequence, or nil.
func firstInvalidUTF8Offset(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
    var p = 0
    let n = bytes.count
    while p < n {
        let b0 = bytes[p]
        if b0 < 0x80 { p += 1; continue }
        guard let (length, lo, hi) = utf8Lead(b0) else { return p }
        let need = length - 1 // continuation bytes
        if p + need >= n { return p }
        let b1 = bytes[p + 1]
        if b1 < lo || b1 > hi { return p }
        if need >= 2 {
            for k in 2...need where bytes[p + k] & 0xC0 != 0x80 { return p }
        }
        p += need + 1
    }
    return nil
}
