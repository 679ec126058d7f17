import Foundation

extension BPETokenizer {
    /// Renders the chat template to text (transformers `apply_chat_template(tokenize=False)`).
    /// Throws `TokenizerError.unknownChatTemplate` when tokenizer_config.json's template is not
    /// one of `ChatTemplateFamily`.
    public func renderChatTemplate(_ messages: [ChatMessage], addGenerationPrompt: Bool = false,
                                   systemPrompt: SystemPromptPolicy = .templateDefault) throws(TokenizerError) -> String {
        try chatPieces(messages, addGenerationPrompt: addGenerationPrompt, systemPrompt: systemPrompt).map(\.text).joined()
    }

    /// Renders and tokenizes a conversation, with each token's role and the assistant-only
    /// loss mask. The ids equal transformers' `apply_chat_template(tokenize=True)`, which
    /// tokenizes without adding special tokens: the rendered text already starts with BOS
    /// where the family has one (`<|begin_of_text|>`, `<bos>`).
    public func applyChatTemplate(_ messages: [ChatMessage], addGenerationPrompt: Bool = false,
                                  systemPrompt: SystemPromptPolicy = .templateDefault) throws(TokenizerError) -> ChatEncoding {
        let text = try renderChatTemplate(messages, addGenerationPrompt: addGenerationPrompt, systemPrompt: systemPrompt)
        var pieces: [ChatPiece]
        if applyNFC {
            // Tokenize a rendering of NFC-normalized contents so token offsets index the pieces
            // directly. The ids are the same as for `text`: every piece boundary sits next to an
            // ASCII character, which NFC never merges across, and the encoder normalizes anyway.
            let nfc = messages.map { ChatMessage(role: $0.role, content: hfNFC($0.content)) }
            var policy = systemPrompt
            if case .custom(let s) = systemPrompt { policy = .custom(hfNFC(s)) }
            pieces = try chatPieces(nfc, addGenerationPrompt: addGenerationPrompt, systemPrompt: policy, nfcDefault: true)
        } else {
            pieces = try chatPieces(messages, addGenerationPrompt: addGenerationPrompt, systemPrompt: systemPrompt)
        }
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

    /// The end-of-turn token's id for this tokenizer's chat template family, if it has one.
    public var endOfTurnTokenID: Int? {
        chatTemplateFamily.flatMap { tokenID(for: $0.endOfTurnToken) }
    }

    /// The rendered pieces for the recognised family.
    private func chatPieces(_ messages: [ChatMessage], addGenerationPrompt: Bool, systemPrompt: SystemPromptPolicy,
                            nfcDefault: Bool = false) throws(TokenizerError) -> [ChatPiece] {
        guard let spec = chatTemplate else { throw .unknownChatTemplate(file: configFile, model: modelName) }
        let bos = bosToken ?? ""
        switch spec.family {
        case .chatML:
            let system: String?
            switch systemPrompt {
            case .templateDefault: system = nfcDefault ? defaultSystemPrompt.map(hfNFC) : defaultSystemPrompt
            case .custom(let s): system = s
            case .none: system = nil
            }
            return try renderQwenChat(messages, addGenerationPrompt: addGenerationPrompt, defaultSystem: system)
        case .llama3:
            return try renderLlama3Chat(messages, addGenerationPrompt: addGenerationPrompt, policy: systemPrompt,
                                        preamble: spec.llamaPreamble, bos: bos)
        case .gemma:
            return try renderGemmaChat(messages, addGenerationPrompt: addGenerationPrompt, policy: systemPrompt, bos: bos)
        }
    }
}
