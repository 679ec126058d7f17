import Foundation
import MisalignIO

/// Everything `BPETokenizer` is built from, after the files are checked.
struct TokenizerParts {
    var vocabularySize: Int
    var merges: MergeTable
    var byteIDs: [UInt32]
    var tokenBytes: [UInt8]
    var tokenStart: [Int32]
    var tokenExists: [Bool]
    var tokenToID: VocabTable
    var addedTokens: [AddedToken]
    var applyNFC: Bool
    var wholeWordIDs: [[UInt8]: UInt32]?
    var eosToken: String?
    var padToken: String?
    var bosToken: String?
    var kind: TokenizerKind = .byteLevel(.qwen2)
    var specialPrefix: [Int] = []
    var specialSuffix: [Int] = []
    /// SentencePiece only: the byte each `<0xNN>` token stands for, -1 for other ids.
    var byteValue: [Int16] = []
    /// SentencePiece only: the model vocabulary, which single characters are looked up in.
    var charVocab: VocabTable? = nil
    var chatTemplate: String?
    var defaultSystemPrompt: String?
    /// Labels for chat-template errors: the tokenizer_config.json path and the model's name.
    var configFile = "tokenizer_config.json"
    var modelName = "(unnamed model)"
}

extension BPETokenizer {
    /// Loads `tokenizer.json` (required) and `tokenizer_config.json` (optional: it supplies the
    /// EOS/PAD tokens and the chat template's default system prompt) from a model directory.
    public convenience init(directory: URL) throws(TokenizerError) {
        let tokURL = directory.appendingPathComponent("tokenizer.json")
        let cfgURL = directory.appendingPathComponent("tokenizer_config.json")
        let tok = try readJSONFile(tokURL)
        let cfg = FileManager.default.fileExists(atPath: cfgURL.path) ? try readJSONFile(cfgURL) : nil
        try self.init(tokenizerJSON: tok, config: cfg, tokenizerFile: tokURL.path, configFile: cfgURL.path)
    }

    /// Builds a tokenizer from already parsed files. The file names only label errors.
    public convenience init(tokenizerJSON: JSONValue, config: JSONValue?,
                            tokenizerFile: String = "tokenizer.json",
                            configFile: String = "tokenizer_config.json") throws(TokenizerError) {
        var parts = try parseTokenizerJSON(tokenizerJSON, file: tokenizerFile)
        parts.configFile = configFile
        let folder = (configFile as NSString).deletingLastPathComponent
        parts.modelName = config?["name_or_path"]?.stringValue
            ?? (folder.isEmpty ? "(unnamed model)" : (folder as NSString).lastPathComponent)
        if let config { try applyConfig(config, to: &parts, file: configFile) } else {
            parts.defaultSystemPrompt = qwen25DefaultSystemPrompt
        }
        self.init(parts: parts)
    }
}

/// Qwen2.5's default system prompt, used when no tokenizer_config.json is present.
public let qwen25DefaultSystemPrompt = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

private func readJSONFile(_ url: URL) throws(TokenizerError) -> JSONValue {
    guard FileManager.default.fileExists(atPath: url.path) else { throw .fileMissing(path: url.path) }
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
        throw .fileCorrupt(path: url.path, reason: "\(error.localizedDescription)")
    }
    do { return try JSONValue.parse(data) } catch {
        throw .fileCorrupt(path: url.path, reason: "invalid JSON: \(error.description)")
    }
}

/// Checks each pipeline component against what this implementation does, so a file that needs
/// something else fails loudly instead of producing different ids.
private func parseTokenizerJSON(_ root: JSONValue, file: String) throws(TokenizerError) -> TokenizerParts {
    guard let top = root.objectValue else { throw .invalidField(file: file, field: "(root)", reason: "is not an object") }

    for key in ["truncation", "padding"] {
        if let v = top[key], !v.isNull {
            throw .unsupportedComponent(file: file, component: key, detail: "must be null; Misalign truncates and pads itself")
        }
    }
    guard let model = top["model"]?.objectValue else { throw .invalidField(file: file, field: "model", reason: "is missing or not an object") }
    let modelType = model["type"]?.stringValue ?? "BPE"
    guard modelType == "BPE" else {
        throw .unsupportedComponent(file: file, component: "model", detail: "type \(modelType) (only BPE is implemented)")
    }
    if let d = model["dropout"], !d.isNull, d.doubleValue != 0 {
        throw .unsupportedComponent(file: file, component: "model.dropout", detail: "BPE dropout is random; it must be null for reproducible ids")
    }
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
        if let v = model[key], !v.isNull, v.stringValue != "" {
            throw .unsupportedComponent(file: file, component: "model.\(key)", detail: "must be empty or null for byte-level BPE")
        }
    }
    let ignoreMerges = model["ignore_merges"]?.boolValue ?? false
    let byteFallback = model["byte_fallback"]?.boolValue ?? false
    let spec = try checkPipeline(root, modelByteFallback: byteFallback, file: file)
    let sentencePiece = spec.kind == .sentencePiece
    if sentencePiece && ignoreMerges {
        throw .unsupportedComponent(file: file, component: "model.ignore_merges", detail: "is not implemented together with byte_fallback")
    }

    // Vocabulary.
    guard let vocab = model["vocab"]?.objectValue else { throw .invalidField(file: file, field: "model.vocab", reason: "is missing or not an object") }
    // Merges and the byte alphabet resolve against the model vocabulary only, as in HF;
    // `tokenToID` adds the added tokens on top of a copy of it.
    var modelVocab = VocabTable(capacity: vocab.count + 1024)
    var maxID = -1
    var vocabIDs: [Int] = []
    vocabIDs.reserveCapacity(vocab.count)
    for (token, value) in vocab.pairs {
        guard let id = value.intValue, id >= 0, id < Int(Int32.max) else {
            throw .invalidField(file: file, field: "model.vocab[\"\(token)\"]", reason: "is not a non-negative integer id")
        }
        modelVocab.insert(token, id: id)
        vocabIDs.append(id)
        maxID = max(maxID, id)
    }
    var tokenToID = modelVocab

    // Added tokens.
    var added: [AddedToken] = []
    for (i, item) in (top["added_tokens"]?.arrayValue ?? []).enumerated() {
        let field = "added_tokens[\(i)]"
        guard let id = item["id"]?.intValue, id >= 0, id < Int(Int32.max), let content = item["content"]?.stringValue else {
            throw .invalidField(file: file, field: field, reason: "needs an integer 'id' and a string 'content'")
        }
        for flag in ["lstrip", "rstrip", "single_word"] where item[flag]?.boolValue == true {
            throw .unsupportedComponent(file: file, component: "\(field).\(flag)", detail: "added token '\(content)' sets \(flag), which is not implemented")
        }
        added.append(AddedToken(id: id, content: content, special: item["special"]?.boolValue ?? false,
                                normalized: item["normalized"]?.boolValue ?? !(item["special"]?.boolValue ?? false)))
        maxID = max(maxID, id)
    }
    let size = maxID + 1

    // Token bytes for decoding: model tokens first, then added tokens override (HF looks ids
    // up in the added vocabulary first).
    var contentOf = [String?](repeating: nil, count: size)
    for (k, token) in vocab.keys.enumerated() { contentOf[vocabIDs[k]] = token }
    for t in added { contentOf[t.id] = t.content; tokenToID.insert(t.content, id: t.id) }
    var tokenBytes: [UInt8] = []
    tokenBytes.reserveCapacity(size * 7)
    var tokenStart = [Int32](repeating: 0, count: size + 1)
    var exists = [Bool](repeating: false, count: size)
    for id in 0..<size {
        tokenStart[id] = Int32(tokenBytes.count)
        if let c = contentOf[id] {
            // SentencePiece: the decoder's Replace("▁" → " "); ByteFallback works on `byteValue`.
            tokenBytes.append(contentsOf: sentencePiece ? Array(c.replacingOccurrences(of: metaspace, with: " ").utf8) : byteLevelDecode(c))
            exists[id] = true
        }
    }
    tokenStart[size] = Int32(tokenBytes.count)
    let byteValue = sentencePiece ? contentOf.map { $0.flatMap(byteFallbackValue) ?? -1 } : []

    // The byte alphabet: byte-level symbols, or SentencePiece's `<0xNN>` fallback tokens.
    var byteIDs = [UInt32](repeating: 0, count: 256)
    for b in 0..<256 {
        let name = sentencePiece ? byteFallbackToken(UInt8(b)) : byteLevelEncode([UInt8(b)])
        guard let id = modelVocab.lookup(name) else { throw .missingByteToken(file: file, byte: UInt8(b)) }
        byteIDs[b] = UInt32(id)
    }

    // Merges: "a b" strings (older files) or ["a", "b"] pairs (tokenizers >= 0.20). Worked on
    // as UTF-8 bytes: byte-level tokens never contain a raw space, so the first 0x20 splits.
    guard let mergeList = model["merges"]?.arrayValue else { throw .invalidField(file: file, field: "model.merges", reason: "is missing or not an array") }
    var merges = MergeTable(capacity: mergeList.count)
    var joined: [UInt8] = []
    for (rank, m) in mergeList.enumerated() {
        var a: [UInt8], b: [UInt8]
        if var s = m.stringValue {
            let split: (Int, Int)? = s.withUTF8 { u in
                guard let sp = u.firstIndex(of: 0x20) else { return nil }
                return (sp, u.count)
            }
            guard let (sp, n) = split, sp > 0, sp < n - 1, !s.utf8.dropFirst(sp + 1).contains(0x20) else {
                throw .invalidField(file: file, field: "model.merges[\(rank)]", reason: "is \"\(s)\", not two tokens separated by one space")
            }
            (a, b) = s.withUTF8 { (Array($0[0..<sp]), Array($0[(sp + 1)...])) }
        } else if let pair = m.arrayValue, pair.count == 2, let x = pair[0].stringValue, let y = pair[1].stringValue {
            a = Array(x.utf8); b = Array(y.utf8)
        } else {
            throw .invalidField(file: file, field: "model.merges[\(rank)]", reason: "is neither \"a b\" nor [\"a\", \"b\"]")
        }
        guard let ia = a.withUnsafeBufferPointer({ modelVocab.lookup($0) }) else {
            throw .mergeUnknownToken(file: file, mergeIndex: rank, token: String(decoding: a, as: UTF8.self))
        }
        guard let ib = b.withUnsafeBufferPointer({ modelVocab.lookup($0) }) else {
            throw .mergeUnknownToken(file: file, mergeIndex: rank, token: String(decoding: b, as: UTF8.self))
        }
        joined.removeAll(keepingCapacity: true)
        joined.append(contentsOf: a); joined.append(contentsOf: b)
        guard let im = joined.withUnsafeBufferPointer({ modelVocab.lookup($0) }) else {
            throw .mergeUnknownToken(file: file, mergeIndex: rank, token: String(decoding: joined, as: UTF8.self))
        }
        merges.insert(left: UInt32(ia), right: UInt32(ib), rank: UInt32(rank), merged: UInt32(im))
    }

    var wholeWordIDs: [[UInt8]: UInt32]? = nil
    if ignoreMerges {
        var map: [[UInt8]: UInt32] = [:]
        for (k, token) in vocab.keys.enumerated() { map[byteLevelDecode(token)] = UInt32(vocabIDs[k]) }
        wholeWordIDs = map
    }

    return TokenizerParts(vocabularySize: size, merges: merges, byteIDs: byteIDs, tokenBytes: tokenBytes,
                          tokenStart: tokenStart, tokenExists: exists, tokenToID: tokenToID, addedTokens: added,
                          applyNFC: spec.applyNFC, wholeWordIDs: wholeWordIDs, kind: spec.kind,
                          specialPrefix: spec.prefix, specialSuffix: spec.suffix, byteValue: byteValue,
                          charVocab: sentencePiece ? modelVocab : nil)
}

/// The vocabulary spelling of SentencePiece's fallback token for `byte`: `<0x0A>`.
func byteFallbackToken(_ byte: UInt8) -> String {
    let hex = String(byte, radix: 16, uppercase: true)
    return "<0x" + (byte < 16 ? "0" : "") + hex + ">"
}

/// The byte a `<0xNN>` token stands for (HF's ByteFallback decoder: six characters, two hex
/// digits of either case), or nil for any other token.
func byteFallbackValue(_ token: String) -> Int16? {
    let u = Array(token.utf8)
    guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E,
          let v = UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16) else { return nil }
    return Int16(v)
}

/// Reads special-token names and the chat template from tokenizer_config.json.
private func applyConfig(_ cfg: JSONValue, to parts: inout TokenizerParts, file: String) throws(TokenizerError) {
    guard cfg.objectValue != nil else { throw .invalidField(file: file, field: "(root)", reason: "is not an object") }
    func tokenName(_ key: String) throws(TokenizerError) -> String? {
        guard let v = cfg[key], !v.isNull else { return nil }
        guard let name = v.stringValue ?? v["content"]?.stringValue else {
            throw .invalidField(file: file, field: key, reason: "is neither a string nor an object with 'content'")
        }
        // A name the vocabulary lacks would leave generation without a stop token; say so now.
        guard parts.tokenToID.lookup(name) != nil else {
            throw .invalidField(file: file, field: key, reason: "names '\(name)', which is not a token in tokenizer.json")
        }
        return name
    }
    parts.eosToken = try tokenName("eos_token")
    parts.padToken = try tokenName("pad_token")
    parts.bosToken = try tokenName("bos_token")
    if let t = cfg["chat_template"], !t.isNull {
        guard let s = t.stringValue else {
            throw .invalidField(file: file, field: "chat_template", reason: "is not a string (named template lists are not supported)")
        }
        parts.chatTemplate = s
        parts.defaultSystemPrompt = extractDefaultSystemPrompt(s)
    }
}

/// The literal default system turn of a ChatML template: the first string literal that reads
/// `'<|im_start|>system\n…<|im_end|>` with constant text in between. Qwen2.5 has one, Qwen3
/// has none (then no default system turn is rendered), older Qwen2 uses a different text.
func extractDefaultSystemPrompt(_ template: String) -> String? {
    let head = "'<|im_start|>system\\n"
    var rest = template[...]
    while let r = rest.range(of: head) {
        let after = rest[r.upperBound...]
        if let end = after.range(of: "<|im_end|>"), !after[..<end.lowerBound].contains("'") {
            let body = String(after[..<end.lowerBound])
            return body.replacingOccurrences(of: "\\n", with: "\n")
        }
        rest = after
    }
    return nil
}
