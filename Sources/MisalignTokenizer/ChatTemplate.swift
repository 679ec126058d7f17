import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// "system", "user", "assistant" or "tool".
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// What to do when a conversation does not start with a system message.
public enum SystemPromptPolicy: Sendable, Equatable {
    /// The template's own default (Qwen2.5: "You are Qwen, created by Alibaba Cloud. …").
    case templateDefault
    /// This text instead of the default.
    case custom(String)
    /// No system turn at all.
    case none
}

/// The ChatML turn a token belongs to, by the message that produced it.
public enum ChatRole: String, Sendable, Equatable {
    case system, user, assistant, tool
}

/// A rendered and tokenized conversation.
public struct ChatEncoding: Sendable, Equatable {
    /// The rendered template text, exactly as transformers' `apply_chat_template` renders it.
    public var text: String
    public var ids: [Int]
    /// Per token: the message role whose turn contains it (the generation prompt counts as assistant).
    public var roles: [ChatRole]
    /// Per token: true for tokens the model should learn to produce — an assistant reply and
    /// the `<|im_end|>` that closes it, not the `<|im_start|>assistant\n` header nor the `\n`
    /// after `<|im_end|>`. A token belongs to the span holding its first byte.
    public var assistantMask: [Bool]
}

/// A piece of rendered text with the role of its turn and whether it is trained on.
struct ChatPiece {
    var text: String
    var role: ChatRole
    var trainable: Bool
}

/// Qwen2.5's ChatML template (tokenizer_config.json `chat_template`) for conversations without
/// tool definitions, written out in Swift. Branch by branch it follows the Jinja source:
/// a system turn first (the conversation's own, else the default), then each message as
/// `<|im_start|>{role}\n{content}<|im_end|>\n`, with consecutive tool results grouped in one
/// `user` turn inside `<tool_response>` tags, then the optional generation prompt.
func renderQwenChat(_ messages: [ChatMessage], addGenerationPrompt: Bool, defaultSystem: String?) throws(TokenizerError) -> [ChatPiece] {
    var pieces: [ChatPiece] = []
    if let first = messages.first, first.role == "system" {
        pieces.append(ChatPiece(text: "<|im_start|>system\n" + first.content + "<|im_end|>\n", role: .system, trainable: false))
    } else if let defaultSystem {
        pieces.append(ChatPiece(text: "<|im_start|>system\n" + defaultSystem + "<|im_end|>\n", role: .system, trainable: false))
    }
    for (i, m) in messages.enumerated() {
        switch m.role {
        case "system" where i == 0:
            continue // rendered above
        case "user", "system":
            let role: ChatRole = m.role == "user" ? .user : .system
            pieces.append(ChatPiece(text: "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n", role: role, trainable: false))
        case "assistant":
            pieces.append(ChatPiece(text: "<|im_start|>assistant\n", role: .assistant, trainable: false))
            pieces.append(ChatPiece(text: m.content + "<|im_end|>", role: .assistant, trainable: true))
            pieces.append(ChatPiece(text: "\n", role: .assistant, trainable: false))
        case "tool":
            if i == 0 || messages[i - 1].role != "tool" {
                pieces.append(ChatPiece(text: "<|im_start|>user", role: .tool, trainable: false))
            }
            pieces.append(ChatPiece(text: "\n<tool_response>\n" + m.content + "\n</tool_response>", role: .tool, trainable: false))
            if i == messages.count - 1 || messages[i + 1].role != "tool" {
                pieces.append(ChatPiece(text: "<|im_end|>\n", role: .tool, trainable: false))
            }
        default:
            // The Jinja template silently drops unknown roles; a dropped turn in training data
            // is almost certainly a bug, so say so.
            throw .chatTemplate(reason: "message \(i) has role '\(m.role)'; expected system, user, assistant or tool")
        }
    }
    if addGenerationPrompt {
        pieces.append(ChatPiece(text: "<|im_start|>assistant\n", role: .assistant, trainable: false))
    }
    return pieces
}

extension BPETokenizer {
    /// Renders the chat template to text (transformers `apply_chat_template(tokenize=False)`).
    public func renderChatTemplate(_ messages: [ChatMessage], addGenerationPrompt: Bool = false,
                                   systemPrompt: SystemPromptPolicy = .templateDefault) throws(TokenizerError) -> String {
        try renderQwenChat(messages, addGenerationPrompt: addGenerationPrompt,
                           defaultSystem: try systemText(systemPrompt)).map(\.text).joined()
    }

    /// Renders and tokenizes a conversation, with each token's role and the assistant-only
    /// loss mask. The ids equal transformers' `apply_chat_template(tokenize=True)`.
    public func applyChatTemplate(_ messages: [ChatMessage], addGenerationPrompt: Bool = false,
                                  systemPrompt: SystemPromptPolicy = .templateDefault) throws(TokenizerError) -> ChatEncoding {
        let system = try systemText(systemPrompt)
        let text = try renderQwenChat(messages, addGenerationPrompt: addGenerationPrompt, defaultSystem: system)
            .map(\.text).joined()
        // Tokenize a rendering of NFC-normalized contents so token offsets index the pieces
        // directly. The ids are the same as for `text`: every piece boundary sits next to an
        // ASCII character, which NFC never merges across, and the encoder normalizes anyway.
        let nfc = messages.map { ChatMessage(role: $0.role, content: hfNFC($0.content)) }
        let pieces = try renderQwenChat(nfc, addGenerationPrompt: addGenerationPrompt,
                                        defaultSystem: system.map(hfNFC))
        var ends: [Int] = []
        var joined = ""
        for p in pieces { joined += p.text; ends.append(joined.utf8.count) }
        var ids: [UInt32] = []
        var offsets: [Int32] = []
        joined.withUTF8 { bytes in
            withUnsafeMutablePointer(to: &offsets) { encodeValidUTF8(bytes, into: &ids, offsets: $0) }
        }
        var roles: [ChatRole] = []
        var mask: [Bool] = []
        roles.reserveCapacity(ids.count); mask.reserveCapacity(ids.count)
        var k = 0
        for start in offsets {
            while k < pieces.count - 1 && Int(start) >= ends[k] { k += 1 }
            roles.append(pieces[k].role)
            mask.append(pieces[k].trainable)
        }
        return ChatEncoding(text: text, ids: ids.map { Int($0) }, roles: roles, assistantMask: mask)
    }

    private func systemText(_ policy: SystemPromptPolicy) throws(TokenizerError) -> String? {
        if let source = chatTemplateSource, !source.contains("<|im_start|>") {
            throw .chatTemplate(reason: "tokenizer_config.json has a chat_template that is not ChatML; only Qwen's ChatML template is rendered natively")
        }
        switch policy {
        case .templateDefault: return defaultSystemPrompt
        case .custom(let s): return s
        case .none: return nil
        }
    }
}
