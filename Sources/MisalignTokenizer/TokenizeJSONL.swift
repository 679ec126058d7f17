import MisalignIO

/// The line protocol of `misalign tokenize`, kept in the library so it is tested.
///
/// Encode lines are `{"text": "..."}` or `{"messages": [{"role", "content"}...],
/// "add_generation_prompt": bool, "system_prompt": string|null}`; each gives `{"ids": [...]}`
/// (plus `"mask"` for chat lines when masks are requested). Decode lines are `{"ids": [...]}`
/// and give `{"text": "..."}`.
public struct TokenizeJSONL: Sendable {
    public let tokenizer: BPETokenizer
    public var decode: Bool
    public var skipSpecialTokens: Bool
    public var includeMask: Bool

    public init(tokenizer: BPETokenizer, decode: Bool = false, skipSpecialTokens: Bool = false, includeMask: Bool = false) {
        self.tokenizer = tokenizer
        self.decode = decode
        self.skipSpecialTokens = skipSpecialTokens
        self.includeMask = includeMask
    }

    /// Processes one raw input line (without its newline). Invalid UTF-8 is an error for the
    /// line rather than being repaired, since repaired text would tokenize to different ids.
    public func process(utf8 line: ArraySlice<UInt8>, lineNumber: Int) throws(TokenizerError) -> String {
        if let bad = line.withUnsafeBufferPointer({ firstInvalidUTF8Offset($0) }) {
            throw .badInputLine(line: lineNumber, reason: "not valid UTF-8 (bad byte at offset \(bad) of the line)")
        }
        return try process(String(decoding: line, as: UTF8.self), lineNumber: lineNumber)
    }

    /// Processes one input line (without its newline) into one output line.
    public func process(_ line: String, lineNumber: Int) throws(TokenizerError) -> String {
        func bad(_ reason: String) -> TokenizerError { .badInputLine(line: lineNumber, reason: reason) }
        let value: JSONValue
        do { value = try JSONValue.parse(line) } catch { throw bad("not valid JSON (\(error.description))") }
        guard value.objectValue != nil else { throw bad("expected a JSON object, got \(value.typeName)") }
        var out = "{"
        if decode {
            guard let items = value["ids"]?.arrayValue else { throw bad("expected {\"ids\": [...]} (decode mode)") }
            var ids: [Int] = []
            ids.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                guard let id = item.intValue else { throw bad("ids[\(i)] is \(item.typeName), not an integer") }
                ids.append(id)
            }
            let text: String
            do { text = try tokenizer.decode(ids, skipSpecialTokens: skipSpecialTokens) } catch { throw bad(error.description) }
            out += "\"text\":"
            JSONValue.writeString(text, to: &out)
        } else if let text = value["text"] {
            guard let s = text.stringValue else { throw bad("\"text\" is \(text.typeName), not a string") }
            appendIDs(tokenizer.encode(s), to: &out)
        } else if let list = value["messages"] {
            guard let items = list.arrayValue else { throw bad("\"messages\" is \(list.typeName), not an array") }
            var messages: [ChatMessage] = []
            for (i, m) in items.enumerated() {
                guard let role = m["role"]?.stringValue, let content = m["content"]?.stringValue else {
                    throw bad("messages[\(i)] needs string \"role\" and \"content\"")
                }
                messages.append(ChatMessage(role: role, content: content))
            }
            var generation = false
            if let g = value["add_generation_prompt"] {
                guard let b = g.boolValue else { throw bad("\"add_generation_prompt\" must be true or false") }
                generation = b
            }
            var policy = SystemPromptPolicy.templateDefault
            if let s = value["system_prompt"] {
                if s.isNull { policy = .none } else if let text = s.stringValue { policy = .custom(text) } else {
                    throw bad("\"system_prompt\" must be a string or null")
                }
            }
            let enc: ChatEncoding
            do { enc = try tokenizer.applyChatTemplate(messages, addGenerationPrompt: generation, systemPrompt: policy) } catch {
                throw bad(error.description)
            }
            appendIDs(enc.ids, to: &out)
            if includeMask {
                out += ",\"mask\":["
                out += enc.assistantMask.map { $0 ? "1" : "0" }.joined(separator: ",")
                out += "]"
            }
        } else {
            throw bad("expected {\"text\": ...} or {\"messages\": [...]}")
        }
        out += "}"
        return out
    }

    private func appendIDs(_ ids: [Int], to out: inout String) {
        out += "\"ids\":["
        for (i, id) in ids.enumerated() {
            if i > 0 { out += "," }
            out += String(id)
        }
        out += "]"
    }
}
