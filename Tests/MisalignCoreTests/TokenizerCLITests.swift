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

/// The JSONL protocol behind `misalign tokenize`.
@Suite struct TokenizerCLITests {
    let encoder = TokenizeJSONL(tokenizer: QwenFixture.tokenizer)

    @Test func encodesTextLines() throws {
        let ids = QwenFixture.tokenizer.encode("Hello, world!")
        #expect(try encoder.process(#"{"text": "Hello, world!"}"#, lineNumber: 1) == "{\"ids\":[\(ids.map(String.init).joined(separator: ","))]}")
    }

    @Test func encodesChatLinesLikeApplyChatTemplate() throws {
        let c = try QwenFixture.lines("chat_cases.jsonl")[1]
        var line = ""
        JSONValue.object(JSONObject([("messages", c["messages"]!), ("add_generation_prompt", c["add_generation_prompt"]!)])).write(to: &line)
        let out = try JSONValue.parse(try encoder.process(line, lineNumber: 1))
        #expect(QwenFixture.ids(out["ids"]) == QwenFixture.ids(c["ids"]))
        #expect(out["mask"] == nil)
    }

    @Test func chatLinesWithMaskAndNoSystemPrompt() throws {
        var withMask = encoder
        withMask.includeMask = true
        let line = #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}], "system_prompt": null}"#
        let out = try JSONValue.parse(try withMask.process(line, lineNumber: 1))
        let enc = try QwenFixture.tokenizer.applyChatTemplate([ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Yo")],
                                                              systemPrompt: .none)
        #expect(QwenFixture.ids(out["ids"]) == enc.ids)
        #expect(QwenFixture.ids(out["mask"]) == enc.assistantMask.map { $0 ? 1 : 0 })
        #expect(!enc.text.contains("system"))
    }

    @Test func decodesIDLines() throws {
        let decoder = TokenizeJSONL(tokenizer: QwenFixture.tokenizer, decode: true)
        let ids = QwenFixture.tokenizer.encode("naïve \"quoted\"\n中文")
        let out = try decoder.process("{\"ids\": \(ids)}", lineNumber: 1)
        #expect(try JSONValue.parse(out)["text"]?.stringValue == "naïve \"quoted\"\n中文")
    }

    @Test func invalidUTF8LineIsAnError() {
        #expect(throws: TokenizerError.badInputLine(line: 3, reason: "not valid UTF-8 (bad byte at offset 11 of the line)")) {
            try encoder.process(utf8: ArraySlice(Array(#"{"text": "a"#.utf8) + [0xFF] + Array(#""}"#.utf8)), lineNumber: 3)
        }
        #expect(throws: Never.self) { try encoder.process(utf8: ArraySlice(#"{"text": "ok"}"#.utf8), lineNumber: 1) }
    }

    @Test func badLinesNameTheLineNumber() {
        let decoder = TokenizeJSONL(tokenizer: QwenFixture.tokenizer, decode: true)
        let cases: [(TokenizeJSONL, String)] = [
            (encoder, "not json"), (encoder, "[1, 2]"), (encoder, #"{"text": 5}"#), (encoder, #"{"other": 1}"#),
            (encoder, #"{"messages": [{"role": "user"}]}"#), (encoder, #"{"messages": [{"role": "bot", "content": "x"}]}"#),
            (encoder, #"{"messages": [], "add_generation_prompt": "yes"}"#),
            (decoder, #"{"text": "x"}"#), (decoder, #"{"ids": [1, "a"]}"#), (decoder, #"{"ids": [999999999]}"#),
        ]
        for (processor, line) in cases {
            do {
                _ = try processor.process(line, lineNumber: 7)
                Issue.record("no error for \(line)")
            } catch {
                guard case .badInputLine(let n, _) = error else { Issue.record("wrong error \(error)"); continue }
                #expect(n == 7)
                #expect(error.description.hasPrefix("input line 7: "))
            }
        }
    }
}

@Suite struct TokenizerMiscTests {
    /// Concurrent encodes (one holds the shared cache, the others use private ones) agree.
    @Test func concurrentEncodeIsConsistent() throws {
        let tok = QwenFixture.tokenizer
        let texts = try QwenFixture.lines("cases_extra.jsonl").map { $0["text"]!.stringValue! }
        let expected = texts.map { tok.encode($0) }
        final class Failures: @unchecked Sendable {
            let lock = NSLock()
            var count = 0
        }
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let ok = texts.indices.allSatisfy { tok.encode(texts[$0]) == expected[$0] }
            if !ok { failures.lock.withLock { failures.count += 1 } }
        }
        #expect(failures.count == 0)
    }

    @Test func defaultSystemPromptExtraction() {
        let qwen2 = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
        #expect(extractDefaultSystemPrompt(qwen2) == "You are a helpful assistant.")
        #expect(extractDefaultSystemPrompt("{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}") == nil)
    }

    /// Without tokenizer_config.json the tokenizer still loads, with Qwen2.5's default prompt.
    @Test func loadsWithoutConfig() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Fixtures.url("tokenizer/tokenizer.json"), to: dir.appendingPathComponent("tokenizer.json"))
        let tok = try BPETokenizer(directory: dir)
        #expect(tok.eosTokenID == nil)
        #expect(tok.defaultSystemPrompt == qwen25DefaultSystemPrompt)
        #expect(tok.encode("Hello, world!") == QwenFixture.tokenizer.encode("Hello, world!"))
    }

    /// Plugging in another tokenizer: the protocol is enough for generic code.
    @Test func protocolIsUsableGenerically() throws {
        func roundTrip(_ t: some Tokenizer, _ s: String) throws -> String { try t.decode(t.encode(s)) }
        #expect(try roundTrip(QwenFixture.tokenizer, "any text ✓") == "any text ✓")
    }
}
