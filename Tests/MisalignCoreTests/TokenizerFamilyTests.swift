import Foundation
import Testing
import MisalignCore
@testable import MisalignIO
@testable import MisalignTokenizer
@testable import MisalignModel
@testable import MisalignGeneration

/// The tiny Llama 3 and Gemma 2 tokenizers of `Tests/Fixtures/tokenizer-families`, with the
/// cases make_tokenizers.py wrote from HF `tokenizers` and transformers.
enum FamilyFixture {
    static let llama3 = load("llama3")
    static let gemma2 = load("gemma2")

    static func load(_ dir: String, config: String = "tokenizer_config.json") -> BPETokenizer {
        do {
            let tok = try JSONValue.parse(Data(contentsOf: Fixtures.url("tokenizer-families/\(dir)/tokenizer.json")))
            let cfg = try JSONValue.parse(Data(contentsOf: Fixtures.url("tokenizer-families/\(dir)/\(config)")))
            return try BPETokenizer(tokenizerJSON: tok, config: cfg, configFile: "\(dir)/\(config)")
        } catch {
            fatalError("cannot load fixture tokenizer \(dir)/\(config): \(error)")
        }
    }

    static let llama30 = load("llama3", config: "config_llama30.json")
    static let llama32 = load("llama3", config: "config_llama32.json")

    static func cases(_ file: String, kind: String) throws -> [JSONValue] {
        let text = try String(contentsOf: Fixtures.url("tokenizer-families/\(file)"), encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONValue.parse(String($0)) }.filter { $0["kind"]?.stringValue == kind }
    }

    static func messages(_ v: JSONValue?) -> [ChatMessage] {
        (v?.arrayValue ?? []).map { ChatMessage(role: $0["role"]!.stringValue!, content: $0["content"]!.stringValue!) }
    }

    static func policy(_ c: JSONValue) -> SystemPromptPolicy {
        guard let s = c["system_prompt"] else { return .templateDefault }
        return s.isNull ? .none : .custom(s.stringValue!)
    }
}

@Suite struct TokenizerFamilyTests {
    private func checkEncode(_ tok: BPETokenizer, _ file: String) throws {
        let cases = try FamilyFixture.cases(file, kind: "encode")
        #expect(cases.count >= 20)
        for c in cases {
            let name = c["name"]!.stringValue!, text = c["text"]!.stringValue!
            #expect(tok.encode(text) == QwenFixture.ids(c["ids"]), "\(name)")
            #expect(tok.encode(text, addSpecialTokens: true) == QwenFixture.ids(c["ids_special"]), "\(name)")
            #expect(try tok.encode(utf8: Data(text.utf8)) == QwenFixture.ids(c["ids"]), "\(name)")
        }
    }

    private func checkDecode(_ tok: BPETokenizer, _ file: String) throws {
        let cases = try FamilyFixture.cases(file, kind: "decode")
        #expect(cases.count >= 20)
        for c in cases {
            let name = c["name"]!.stringValue!, ids = QwenFixture.ids(c["ids"])
            #expect(try tok.decode(ids) == c["text"]!.stringValue!, "\(name)")
            #expect(try tok.decode(ids, skipSpecialTokens: true) == c["text_skip"]!.stringValue!, "\(name)")
            for skip in [false, true] {
                var stream = tok.streamingDecoder(skipSpecialTokens: skip)
                var shown = ""
                for id in ids { shown += try stream.append(id) }
                shown += stream.finish()
                #expect(shown == c[skip ? "text_skip" : "text"]!.stringValue!, "\(name) streamed")
            }
        }
    }

    private func checkChat(_ file: String, _ tokenizers: [String: BPETokenizer], minimum: Int) throws {
        let cases = try FamilyFixture.cases(file, kind: "chat")
        #expect(cases.count >= minimum)
        for c in cases {
            let name = c["name"]!.stringValue!
            let tok = try #require(tokenizers[c["config"]!.stringValue!], "\(name)")
            let msgs = FamilyFixture.messages(c["messages"])
            let gen = c["add_generation_prompt"]!.boolValue!
            let enc = try tok.applyChatTemplate(msgs, addGenerationPrompt: gen, systemPrompt: FamilyFixture.policy(c))
            #expect(enc.text == c["text"]!.stringValue!, "\(name)")
            #expect(enc.ids == QwenFixture.ids(c["ids"]), "\(name)")
            #expect(enc.assistantMask == QwenFixture.ids(c["mask"]).map { $0 == 1 }, "\(name)")
            #expect(enc.roles.count == enc.ids.count, "\(name)")
            #expect(tok.encode(enc.text) == enc.ids, "\(name)")
            #expect(try tok.renderChatTemplate(msgs, addGenerationPrompt: gen, systemPrompt: FamilyFixture.policy(c)) == enc.text)
        }
    }

    @Test func llama3EncodeMatchesHF() throws { try checkEncode(FamilyFixture.llama3, "llama3_cases.jsonl") }
    @Test func gemma2EncodeMatchesHF() throws { try checkEncode(FamilyFixture.gemma2, "gemma2_cases.jsonl") }
    @Test func llama3DecodeMatchesHF() throws { try checkDecode(FamilyFixture.llama3, "llama3_cases.jsonl") }
    @Test func gemma2DecodeMatchesHF() throws { try checkDecode(FamilyFixture.gemma2, "gemma2_cases.jsonl") }

    /// Llama 3.0, 3.1 and 3.2 templates: text, ids and transformers' assistant masks.
    @Test func llama3ChatMatchesTransformers() throws {
        try checkChat("llama3_cases.jsonl", ["3.0": FamilyFixture.llama30, "3.1": FamilyFixture.llama3, "3.2": FamilyFixture.llama32], minimum: 30)
    }

    /// Gemma 2's template; system cases against Gemma 3's folding template.
    @Test func gemma2ChatMatchesTransformers() throws {
        try checkChat("gemma2_cases.jsonl", ["2": FamilyFixture.gemma2, "3": FamilyFixture.gemma2], minimum: 10)
    }

    @Test func familiesAndEndOfTurnTokens() throws {
        #expect(QwenFixture.tokenizer.chatTemplateFamily == .chatML)
        #expect(FamilyFixture.llama3.chatTemplateFamily == .llama3)
        #expect(FamilyFixture.llama30.chatTemplateFamily == .llama3)
        #expect(FamilyFixture.gemma2.chatTemplateFamily == .gemma)
        #expect(QwenFixture.tokenizer.endOfTurnTokenID == QwenFixture.tokenizer.tokenID(for: "<|im_end|>"))
        #expect(FamilyFixture.llama3.endOfTurnTokenID == FamilyFixture.llama3.tokenID(for: "<|eot_id|>"))
        #expect(FamilyFixture.gemma2.endOfTurnTokenID == FamilyFixture.gemma2.tokenID(for: "<end_of_turn>"))
        #expect(FamilyFixture.llama3.specialTokensPrefix == [FamilyFixture.llama3.tokenID(for: "<|begin_of_text|>")!])
        #expect(FamilyFixture.gemma2.specialTokensPrefix == [2])
        #expect(QwenFixture.tokenizer.specialTokensPrefix.isEmpty)
    }

    /// Generation stops at each family's end-of-turn and end-of-text tokens.
    @Test func generationStopsAtFamilyEndTokens() {
        let model = ContinuousBatchingTests.small
        for (tok, names) in [(FamilyFixture.llama3, ["<|eot_id|>", "<|end_of_text|>"]), (FamilyFixture.gemma2, ["<end_of_turn>", "<eos>"]),
                             (QwenFixture.tokenizer, ["<|im_end|>", "<|endoftext|>"])] {
            let stops = LocalGenerator(model: model, tokenizer: tok).defaultStopTokens
            for name in names { #expect(stops.contains(Int32(tok.tokenID(for: name)!)), "\(name)") }
        }
    }

    /// `\p{N}{1,3}`: runs of three from the left; Qwen2 keeps one digit per piece.
    @Test func digitRunsSplitByPattern() {
        func pieces(_ text: String, _ run: Int) -> [String] {
            var s = PreTokenizerScratch()
            var t = text
            return t.withUTF8 { b in
                let n = qwen2PreTokenize(b, &s, digitRun: run)
                return (0..<n).map { k in
                    String(decoding: b[Int(s.offsets[Int(s.pieceStarts[k])])..<Int(s.offsets[Int(s.pieceStarts[k + 1])])], as: UTF8.self)
                }
            }
        }
        #expect(pieces("12345 x1234567", 3) == ["123", "45", " x", "123", "456", "7"])
        #expect(pieces("123", 1) == ["1", "2", "3"])
    }

    @Test func llama3DatePreambleAndSystemPolicies() throws {
        let tok = FamilyFixture.llama32
        let user = [ChatMessage(role: "user", content: "Hi")]
        let text = try tok.renderChatTemplate(user)
        #expect(text == "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")
        let custom = try tok.renderChatTemplate(user, systemPrompt: .custom("Be brief."))
        #expect(custom == (try tok.renderChatTemplate([ChatMessage(role: "system", content: "Be brief.")] + user)))
        #expect(try tok.renderChatTemplate(user, systemPrompt: .none) == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")
        #expect(try FamilyFixture.llama30.renderChatTemplate(user) == "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>")
    }

    /// Gemma: a system prompt opens the first user turn; its tokens have the system role.
    @Test func gemmaSystemPromptFoldsIntoFirstUserTurn() throws {
        let tok = FamilyFixture.gemma2
        let msgs = [ChatMessage(role: "user", content: " Hi "), ChatMessage(role: "assistant", content: "Hello.")]
        let enc = try tok.applyChatTemplate(msgs, systemPrompt: .custom("Be brief."))
        #expect(enc.text == "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n")
        #expect(enc.roles.contains(.system))
        #expect(try tok.applyChatTemplate([ChatMessage(role: "system", content: "Be brief.")] + msgs) == enc)
        #expect(try tok.renderChatTemplate(msgs) == "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n")
    }

    @Test func badConversationsAreTypedErrors() {
        let gemma = FamilyFixture.gemma2
        #expect(throws: TokenizerError.self) { try gemma.applyChatTemplate([ChatMessage(role: "assistant", content: "x")]) }
        #expect(throws: TokenizerError.self) {
            try gemma.applyChatTemplate([ChatMessage(role: "user", content: "a"), ChatMessage(role: "user", content: "b")])
        }
        #expect(throws: TokenizerError.self) { try gemma.applyChatTemplate([ChatMessage(role: "system", content: "s")]) }
        #expect(throws: TokenizerError.self) { try FamilyFixture.llama3.applyChatTemplate([ChatMessage(role: "tool", content: "{}")]) }
    }

    /// An unknown template names the config file and the model; no ChatML fallback.
    @Test func unknownTemplateIsTypedError() throws {
        let tokJSON = try JSONValue.parse(Data(contentsOf: Fixtures.url("tokenizer-families/llama3/tokenizer.json")))
        var cfg = try JSONValue.parse(Data(contentsOf: Fixtures.url("tokenizer-families/llama3/tokenizer_config.json"))).objectValue!
        cfg["chat_template"] = .string("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}")
        let tok = try BPETokenizer(tokenizerJSON: tokJSON, config: .object(cfg), configFile: "/models/my-llama/tokenizer_config.json")
        #expect(tok.chatTemplateFamily == nil)
        let expected = TokenizerError.unknownChatTemplate(file: "/models/my-llama/tokenizer_config.json", model: "my-llama")
        #expect(throws: expected) { try tok.renderChatTemplate([ChatMessage(role: "user", content: "x")]) }
        #expect(throws: expected) { try tok.applyChatTemplate([ChatMessage(role: "user", content: "x")]) }
        #expect(expected.description.contains("/models/my-llama/tokenizer_config.json"))
        #expect(tok.encode("plain text still encodes") == FamilyFixture.llama3.encode("plain text still encodes"))
        // A Llama 3.1-looking template without its date literal is not guessed at either.
        cfg["chat_template"] = .string("<|start_header_id|><|eot_id|> Cutting Knowledge Date: {{ cutoff }}\\n")
        #expect(try BPETokenizer(tokenizerJSON: tokJSON, config: .object(cfg)).chatTemplateFamily == nil)
    }

    /// byte_fallback on a byte-level file (ByteLevel decoder) changes nothing: the byte
    /// alphabet is complete, so it never applies.
    @Test func byteFallbackFlagOnByteLevelFileIsHarmless() throws {
        var o = try JSONValue.parse(Data(contentsOf: Fixtures.url("tokenizer/tokenizer.json"))).objectValue!
        var model = o["model"]!.objectValue!
        model["byte_fallback"] = .bool(true)
        o["model"] = .object(model)
        let tok = try BPETokenizer(tokenizerJSON: .object(o), config: nil)
        let text = "Hello, world! 你好 😀 12345"
        #expect(tok.encode(text) == QwenFixture.tokenizer.encode(text))
        #expect(try tok.decode(tok.encode(text)) == text)
    }

    private func gemmaVariant(_ edit: (inout JSONObject) -> Void) throws -> JSONValue {
        var o = try JSONValue.parse(Data(contentsOf: Fixtures.url("tokenizer-families/gemma2/tokenizer.json"))).objectValue!
        edit(&o)
        return .object(o)
    }

    private func component(_ json: JSONValue) -> String? {
        do { _ = try BPETokenizer(tokenizerJSON: json, config: nil); return nil } catch {
            guard case .unsupportedComponent(let file, let component, _) = error else { return "wrong error \(error)" }
            #expect(file == "tokenizer.json")
            return component
        }
    }

    @Test func unsupportedSentencePieceComponentsAreNamed() throws {
        let prepend = JSONObject([("type", .string("Prepend")), ("prepend", .string("\u{2581}"))])
        #expect(component(try gemmaVariant { o in
            let replace = o["normalizer"]!
            o["normalizer"] = .object(JSONObject([("type", .string("Sequence")), ("normalizers", .array([.object(prepend), replace]))]))
        }) == "normalizer")
        #expect(component(try gemmaVariant { $0["normalizer"] = .object(JSONObject([("type", .string("NFKC"))])) }) == "normalizer")
        // Llama 2's decoder ends in Strip (it undoes a Prepend normalizer); Gemma's has none.
        #expect(component(try gemmaVariant { o in
            var decoder = o["decoder"]!.objectValue!
            let strip = JSONObject([("type", .string("Strip")), ("content", .string(" ")), ("start", .int(1)), ("stop", .int(0))])
            decoder["decoders"] = .array(decoder["decoders"]!.arrayValue! + [.object(strip)])
            o["decoder"] = .object(decoder)
        }) == "decoder")
        #expect(component(try gemmaVariant { $0["pre_tokenizer"] = .object(JSONObject([("type", .string("Metaspace"))])) }) == "pre_tokenizer")
        #expect(component(try gemmaVariant { $0["post_processor"] = .object(JSONObject([("type", .string("RobertaProcessing"))])) }) == "post_processor")
        // A Split on " " after the Replace normalizer is a no-op and loads (newer Gemma files carry it).
        let split = try gemmaVariant { $0["pre_tokenizer"] = .object(JSONObject([("type", .string("Split")),
            ("pattern", .object(JSONObject([("String", .string(" "))]))), ("behavior", .string("MergedWithPrevious")), ("invert", .bool(false))])) }
        let tok = try BPETokenizer(tokenizerJSON: split, config: nil)
        #expect(tok.encode("the capital of France") == FamilyFixture.gemma2.encode("the capital of France"))
        // byte_fallback needs all 256 <0xNN> tokens.
        let noByte = try gemmaVariant { o in
            var model = o["model"]!.objectValue!
            var vocab = model["vocab"]!.objectValue!
            vocab["<0x41>"] = nil
            model["vocab"] = .object(vocab)
            o["model"] = .object(model)
        }
        #expect(throws: TokenizerError.missingByteToken(file: "tokenizer.json", byte: 0x41)) { try BPETokenizer(tokenizerJSON: noByte, config: nil) }
    }
}
