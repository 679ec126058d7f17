import Foundation
import Testing
import MisalignCore
@testable import MisalignKernels
@testable import MisalignIO
@testable import MisalignHTTP
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration
@testable import MisalignJudge
@testable import MisalignChangePoint
@testable import MisalignPipeline
@testable import MisalignReport
@testable import MisalignTesting

/// Chat template rendering, ids and assistant masks against transformers' apply_chat_template.
@Suite struct TokenizerChatTests {
    private func messages(_ v: JSONValue?) -> [ChatMessage] {
        (v?.arrayValue ?? []).map { ChatMessage(role: $0["role"]!.stringValue!, content: $0["content"]!.stringValue!) }
    }

    /// The 10 given cases: rendered text and ids equal transformers'.
    @Test func givenChatCasesMatchTransformers() throws {
        let tok = QwenFixture.tokenizer
        let cases = try QwenFixture.lines("chat_cases.jsonl")
        #expect(cases.count == 10)
        var mismatches = 0
        for c in cases {
            let enc = try tok.applyChatTemplate(messages(c["messages"]), addGenerationPrompt: c["add_generation_prompt"]!.boolValue!)
            let text = c["text"]!.stringValue!
            if enc.text != text || enc.ids != QwenFixture.ids(c["ids"]) { mismatches += 1 }
            #expect(enc.text == text)
            #expect(enc.ids == QwenFixture.ids(c["ids"]))
            #expect(tok.encode(text) == enc.ids)
        }
        #expect(mismatches == 0)
    }

    /// make_cases.py: text, ids, per-token roles and masks, including custom/no system prompt.
    @Test func chatMasksMatchGenerated() throws {
        let tok = QwenFixture.tokenizer
        let cases = try QwenFixture.lines("chat_mask_cases.jsonl")
        #expect(cases.count >= 15)
        for c in cases {
            let name = c["name"]!.stringValue!
            var policy = SystemPromptPolicy.templateDefault
            if let s = c["system_prompt"] { policy = s.isNull ? .none : .custom(s.stringValue!) }
            let enc = try tok.applyChatTemplate(messages(c["messages"]), addGenerationPrompt: c["add_generation_prompt"]!.boolValue!,
                                                systemPrompt: policy)
            #expect(enc.text == c["text"]!.stringValue!, "\(name)")
            #expect(enc.ids == QwenFixture.ids(c["ids"]), "\(name)")
            #expect(enc.assistantMask == QwenFixture.ids(c["mask"]).map { $0 == 1 }, "\(name)")
            #expect(enc.roles.map(\.rawValue) == (c["roles"]?.arrayValue ?? []).map { $0.stringValue! }, "\(name)")
            #expect(try tok.renderChatTemplate(messages(c["messages"]), addGenerationPrompt: c["add_generation_prompt"]!.boolValue!,
                                               systemPrompt: policy) == enc.text)
        }
    }

    /// The mask covers the reply and its <|im_end|>, not the header or the trailing newline.
    @Test func maskCoversReplyAndImEndOnly() throws {
        let tok = QwenFixture.tokenizer
        let enc = try tok.applyChatTemplate([ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Hello there")])
        let imStart = tok.specialTokenIDs["<|im_start|>"]!, imEnd = tok.specialTokenIDs["<|im_end|>"]!
        let masked = zip(enc.ids, enc.assistantMask).filter(\.1).map(\.0)
        #expect(masked == tok.encode("Hello there") + [imEnd])
        let lastStart = enc.ids.lastIndex(of: imStart)!
        #expect(!enc.assistantMask[lastStart ... lastStart + 2].contains(true)) // <|im_start|> assistant \n
        #expect(enc.ids.last == tok.encode("\n")[0] && enc.assistantMask.last == false)
    }

    @Test func defaultSystemPromptComesFromTemplate() {
        #expect(QwenFixture.tokenizer.defaultSystemPrompt == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
    }

    @Test func unknownRoleIsAnError() {
        #expect(throws: TokenizerError.self) {
            try QwenFixture.tokenizer.applyChatTemplate([ChatMessage(role: "narrator", content: "x")])
        }
    }
}
