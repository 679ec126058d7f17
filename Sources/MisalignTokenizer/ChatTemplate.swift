import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// "system", "user", "assistant" or "tool".
    public var role: String
    public var content: String
    public init(role: String, content: String) { self.role = role; self.content = content }
}

/// What to do when a conversation does not start with a system message. (A conversation's own
/// leading system message always wins.)
public enum SystemPromptPolicy: Sendable, Equatable {
    /// The template's own default: Qwen2.5 "You are Qwen, created by Alibaba Cloud. …"; Llama
    /// 3.1/3.2 a system turn holding only the date preamble ("Cutting Knowledge Date: …");
    /// nothing for Qwen3, Llama 3.0 and Gemma 2.
    case templateDefault
    /// This text, rendered as if the conversation started with a system message holding it
    /// (for Gemma 2, folded into the first user turn; see `ChatTemplateFamily.gemma`).
    case custom(String)
    /// No system turn at all (for Llama 3.1/3.2 this drops the date preamble too, which the
    /// template itself never does).
    case none
}

/// The chat templates Misalign renders natively, recognised in tokenizer_config.json's
/// `chat_template` by the tokens the Jinja source writes. Anything else is refused
/// (`TokenizerError.unknownChatTemplate`) rather than rendered as some other family.
public enum ChatTemplateFamily: String, Sendable, Equatable, CaseIterable {
    /// ChatML as Qwen2/Qwen2.5 write it (`<|im_start|>`): `<|im_start|>role\ncontent<|im_end|>\n`.
    case chatML
    /// Llama 3.x (`<|start_header_id|>`): `<|begin_of_text|>`, then per turn
    /// `<|start_header_id|>role<|end_header_id|>\n\n` + trimmed content + `<|eot_id|>`. The 3.1
    /// and 3.2 templates open with a system turn that starts "Cutting Knowledge Date: December
    /// 2023\nToday Date: 26 Jul 2024\n\n"; both strings are read from the template's literals. The
    /// 3.2 template asks for today's date (`strftime_now`) when it can; Misalign always uses the
    /// literal fallback date so the same data gives the same ids on every day (to match a
    /// transformers rendering, pass it `date_string="26 Jul 2024"`).
    case llama3
    /// Gemma 2 (`<start_of_turn>`): `<bos>`, then per turn `<start_of_turn>role\n` + trimmed
    /// content + `<end_of_turn>\n`, the assistant role written `model`; roles must alternate
    /// user/assistant. Gemma 2's template raises on a system message; Misalign instead folds
    /// the system prompt into the first user turn as `system + "\n\n" + user`, as Gemma 3's
    /// official template does.
    case gemma

    /// The token that closes a turn and that generation stops at.
    public var endOfTurnToken: String {
        switch self {
        case .chatML: return "<|im_end|>"
        case .llama3: return "<|eot_id|>"
        case .gemma: return "<end_of_turn>"
        }
    }
}

/// The turn a token belongs to, by the message that produced it (a Gemma system prompt folded
/// into the first user turn keeps the system role).
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
    /// the end-of-turn token that closes it (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`), not
    /// the header (`<|im_start|>assistant\n`, `<|start_header_id|>assistant<|end_header_id|>\n\n`,
    /// `<start_of_turn>model\n`) nor a `\n` after the end-of-turn token. A token belongs to the
    /// span holding its first byte.
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

