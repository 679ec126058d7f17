import Foundation

/// A recognised chat template and the literals read from its source.
struct ChatTemplateSpec: Sendable {
    var family: ChatTemplateFamily
    /// Llama 3.1/3.2: the text every system turn opens with,
    /// "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"; nil for Llama 3.0.
    var llamaPreamble: String?

    /// Recognises `source` by signature; nil when it is no family Misalign renders. No template
    /// at all (older or hand-made tokenizer folders) means ChatML, as before families existed.
    init?(source: String?) {
        guard let source else { family = .chatML; return }
        if source.contains("<|im_start|>") {
            family = .chatML
        } else if source.contains("<|start_header_id|>") && source.contains("<|eot_id|>") {
            family = .llama3
            if source.contains("Cutting Knowledge Date: ") {
                // Both literals must be there; a variant without them is not a template we know.
                guard let cutoff = literal(in: source, after: "Cutting Knowledge Date: ", before: "\\n"),
                      let date = literal(in: source, after: "set date_string = \"", before: "\"") else { return nil }
                llamaPreamble = "Cutting Knowledge Date: " + cutoff + "\nToday Date: " + date + "\n\n"
            }
        } else if source.contains("<start_of_turn>") && source.contains("<end_of_turn>") {
            family = .gemma
        } else {
            return nil
        }
    }
}

/// The text between the first `after` and the next `before`, if it holds no quote or brace
/// (that is, if it is a constant of the template rather than template code).
private func literal(in source: String, after: String, before: String) -> String? {
    guard let a = source.range(of: after), let b = source[a.upperBound...].range(of: before) else { return nil }
    let text = source[a.upperBound..<b.lowerBound]
    guard !text.contains(where: { "\"'{}".contains($0) }) else { return nil }
    return String(text)
}

/// Jinja's `trim` filter, which is Python's `str.strip()`: removes leading and trailing
/// characters that Python counts as whitespace.
func pythonStrip(_ s: String) -> String {
    func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }
    let u = s.unicodeScalars
    guard let first = u.firstIndex(where: { !isSpace($0) }) else { return "" }
    let last = u.lastIndex(where: { !isSpace($0) })!
    return String(u[first...last])
}

/// The conversation's leading system text, else the policy's, and the messages after it.
func splitSystem(_ messages: [ChatMessage], _ policy: SystemPromptPolicy, default fallback: String?) -> (String?, ArraySlice<ChatMessage>) {
    if let first = messages.first, first.role == "system" { return (first.content, messages.dropFirst()) }
    switch policy {
    case .templateDefault: return (fallback, messages[...])
    case .custom(let s): return (s, messages[...])
    case .none: return (nil, messages[...])
    }
}

/// The Llama 3.x templates for conversations without tools, written out in Swift. 3.1/3.2 (a
/// `preamble`): `bos`, a system turn of preamble + trimmed system text (empty by default), then
/// each turn. 3.0: `bos` before the first turn, and a system message is one more turn.
func renderLlama3Chat(_ messages: [ChatMessage], addGenerationPrompt: Bool, policy: SystemPromptPolicy,
                      preamble: String?, bos: String) throws(TokenizerError) -> [ChatPiece] {
    var pieces: [ChatPiece] = []
    let (system, rest) = splitSystem(messages, policy, default: preamble == nil ? nil : "")
    func header(_ role: String) -> String { "<|start_header_id|>" + role + "<|end_header_id|>\n\n" }
    if let system {
        pieces.append(ChatPiece(text: header("system") + (preamble ?? "") + pythonStrip(system) + "<|eot_id|>", role: .system, trainable: false))
    }
    for (i, m) in rest.enumerated() {
        switch m.role {
        case "system", "user":
            pieces.append(ChatPiece(text: header(m.role) + pythonStrip(m.content) + "<|eot_id|>", role: m.role == "user" ? .user : .system, trainable: false))
        case "assistant":
            pieces.append(ChatPiece(text: header("assistant"), role: .assistant, trainable: false))
            pieces.append(ChatPiece(text: pythonStrip(m.content) + "<|eot_id|>", role: .assistant, trainable: true))
        default:
            throw .chatTemplate(reason: "message \(i + messages.count - rest.count) has role '\(m.role)'; the Llama 3 template is rendered for system, user and assistant turns only")
        }
    }
    if addGenerationPrompt { pieces.append(ChatPiece(text: header("assistant"), role: .assistant, trainable: false)) }
    // 3.1/3.2 write BOS first always; 3.0 writes it before the first message only.
    if preamble != nil || !messages.isEmpty || system != nil { prependBOS(bos, to: &pieces) }
    return pieces
}

/// Gemma 2's template, with the system rule of `ChatTemplateFamily.gemma`: the system text
/// (untrimmed) and "\n\n" open the first user turn, whose own text is trimmed as usual.
func renderGemmaChat(_ messages: [ChatMessage], addGenerationPrompt: Bool, policy: SystemPromptPolicy,
                     bos: String) throws(TokenizerError) -> [ChatPiece] {
    var pieces: [ChatPiece] = []
    let (system, rest) = splitSystem(messages, policy, default: nil)
    let offset = messages.count - rest.count
    if system != nil && rest.first?.role != "user" {
        throw .chatTemplate(reason: "a system prompt is folded into the first user turn for Gemma, so a user message must follow it")
    }
    for (i, m) in rest.enumerated() {
        let expected = i % 2 == 0 ? "user" : "assistant"
        guard m.role == expected else {
            throw .chatTemplate(reason: "message \(i + offset) has role '\(m.role)' where the Gemma template needs '\(expected)': after an optional leading system message, roles must alternate user/assistant starting with user")
        }
        if m.role == "user" {
            pieces.append(ChatPiece(text: "<start_of_turn>user\n", role: .user, trainable: false))
            if i == 0, let system {
                pieces.append(ChatPiece(text: system + "\n\n", role: .system, trainable: false))
            }
            pieces.append(ChatPiece(text: pythonStrip(m.content) + "<end_of_turn>\n", role: .user, trainable: false))
        } else {
            pieces.append(ChatPiece(text: "<start_of_turn>model\n", role: .assistant, trainable: false))
            pieces.append(ChatPiece(text: pythonStrip(m.content) + "<end_of_turn>", role: .assistant, trainable: true))
            pieces.append(ChatPiece(text: "\n", role: .assistant, trainable: false))
        }
    }
    if addGenerationPrompt { pieces.append(ChatPiece(text: "<start_of_turn>model\n", role: .assistant, trainable: false)) }
    prependBOS(bos, to: &pieces)
    return pieces
}

/// BOS joins the first piece (its tokens take that turn's role and are never trained on).
private func prependBOS(_ bos: String, to pieces: inout [ChatPiece]) {
    if bos.isEmpty { return }
    if pieces.isEmpty {
        pieces.append(ChatPiece(text: bos, role: .user, trainable: false))
    } else if pieces[0].trainable {
        pieces.insert(ChatPiece(text: bos, role: pieces[0].role, trainable: false), at: 0)
    } else {
        pieces[0].text = bos + pieces[0].text
    }
}
