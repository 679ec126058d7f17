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

/// Every user-caused failure is a typed `TokenizerError` with a useful message.
@Suite struct TokenizerErrorTests {
    private static let base: JSONValue = try! JSONValue.parse(Data(contentsOf: Fixtures.url("tokenizer/tokenizer.json")))

    /// A copy of the fixture with one top-level field changed by `edit`.
    private func variant(_ edit: (inout JSONObject) -> Void) -> JSONValue {
        var o = Self.base.objectValue!
        edit(&o)
        return .object(o)
    }

    private func load(_ v: JSONValue) throws(TokenizerError) -> BPETokenizer {
        try BPETokenizer(tokenizerJSON: v, config: nil)
    }

    @Test func missingFile() {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: TokenizerError.fileMissing(path: dir.appendingPathComponent("tokenizer.json").path)) {
            try BPETokenizer(directory: dir)
        }
    }

    @Test func corruptFile() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("{\"model\": {\"vocab\": ".utf8).write(to: dir.appendingPathComponent("tokenizer.json"))
        do {
            _ = try BPETokenizer(directory: dir)
            Issue.record("expected an error")
        } catch {
            guard case .fileCorrupt(let path, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(path.hasSuffix("tokenizer.json"))
            #expect(error.description.contains("tokenizer.json"))
        }
    }

    @Test func mergeWithUnknownToken() {
        let v = variant { o in
            var model = o["model"]!.objectValue!
            var merges = model["merges"]!.arrayValue!
            merges[5] = .string("Ġ NOT_A_TOKEN")
            model["merges"] = .array(merges)
            o["model"] = .object(model)
        }
        #expect(throws: TokenizerError.mergeUnknownToken(file: "tokenizer.json", mergeIndex: 5, token: "NOT_A_TOKEN")) { try load(v) }
    }

    /// The fixture stores merges as "a b" strings; tokenizers >= 0.20 writes ["a", "b"] pairs.
    @Test func mergesInPairFormLoadTheSame() throws {
        let v = variant { o in
            var model = o["model"]!.objectValue!
            let merges = model["merges"]!.arrayValue!.map { m -> JSONValue in
                let p = m.stringValue!.split(separator: " ").map { JSONValue.string(String($0)) }
                return .array(p)
            }
            model["merges"] = .array(merges)
            o["model"] = .object(model)
        }
        let tok = try load(v)
        let text = "Hello, world! 你好 internationalization 1234"
        #expect(tok.encode(text) == QwenFixture.tokenizer.encode(text))
    }

    @Test func unsupportedComponentsAreNamed() {
        let badNormalizer = variant { $0["normalizer"] = .object(JSONObject([("type", .string("NFKC"))])) }
        #expect(throws: TokenizerError.unsupportedComponent(file: "tokenizer.json", component: "normalizer", detail: "type NFKC (only NFC is implemented)")) {
            try load(badNormalizer)
        }
        let badModel = variant { o in
            var model = o["model"]!.objectValue!
            model["type"] = .string("WordPiece")
            o["model"] = .object(model)
        }
        do { _ = try load(badModel); Issue.record("expected an error") } catch {
            guard case .unsupportedComponent(_, let component, _) = error else { Issue.record("\(error)"); return }
            #expect(component == "model")
        }
        let badPattern = variant { o in
            let split = JSONObject([("type", .string("Split")), ("pattern", .object(JSONObject([("Regex", .string("\\w+"))]))),
                                    ("behavior", .string("Isolated")), ("invert", .bool(false))])
            let bl = JSONObject([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("use_regex", .bool(false))])
            o["pre_tokenizer"] = .object(JSONObject([("type", .string("Sequence")), ("pretokenizers", .array([.object(split), .object(bl)]))]))
        }
        do { _ = try load(badPattern); Issue.record("expected an error") } catch {
            guard case .unsupportedComponent(_, let component, let detail) = error else { Issue.record("\(error)"); return }
            #expect(component == "pre_tokenizer Split pattern")
            #expect(detail.contains("\\w+"))
        }
    }

    @Test func missingVocabIsInvalidField() {
        let v = variant { o in
            var model = o["model"]!.objectValue!
            model["vocab"] = nil
            o["model"] = .object(model)
        }
        #expect(throws: TokenizerError.invalidField(file: "tokenizer.json", field: "model.vocab", reason: "is missing or not an object")) { try load(v) }
    }

    @Test func configNamingUnknownEOSToken() throws {
        var cfg = try JSONValue.parse(Data(contentsOf: Fixtures.url("tokenizer/tokenizer_config.json"))).objectValue!
        cfg["eos_token"] = .string("<|no_such_token|>")
        #expect(throws: TokenizerError.invalidField(file: "tokenizer_config.json", field: "eos_token",
                                                    reason: "names '<|no_such_token|>', which is not a token in tokenizer.json")) {
            try BPETokenizer(tokenizerJSON: Self.base, config: .object(cfg))
        }
    }

    @Test func invalidUTF8IsRejected() {
        let tok = QwenFixture.tokenizer
        #expect(throws: TokenizerError.invalidUTF8(offset: 2)) { try tok.encode(utf8: Data([0x61, 0x62, 0xFF, 0x63])) }
        #expect(throws: TokenizerError.invalidUTF8(offset: 1)) { try tok.encode(utf8: Data([0x61, 0xE2, 0x82])) } // truncated
        #expect(throws: TokenizerError.invalidUTF8(offset: 0)) { try tok.encode(utf8: Data([0xED, 0xA0, 0x80])) } // surrogate
        #expect(throws: TokenizerError.invalidUTF8(offset: 0)) { try tok.encode(utf8: Data([0xC0, 0xAF])) } // overlong
        #expect(throws: Never.self) { try tok.encode(utf8: Data("ok €😀".utf8)) }
    }

    @Test func idOutOfRange() {
        let tok = QwenFixture.tokenizer
        #expect(throws: TokenizerError.idOutOfRange(id: 151665, vocabularySize: 151665)) { try tok.decode([1, 151665]) }
        #expect(throws: TokenizerError.idOutOfRange(id: -1, vocabularySize: 151665)) { try tok.decode([-1]) }
        var stream = tok.streamingDecoder()
        #expect(throws: TokenizerError.self) { try stream.append(10_000_000) }
    }

    @Test func descriptionsSayWhatToDo() {
        let e = TokenizerError.idOutOfRange(id: 5, vocabularySize: 3)
        #expect(e.description.contains("0..<3"))
        #expect(TokenizerError.fileMissing(path: "/x/tokenizer.json").description.contains("Point the tokenizer folder at the model directory"))
    }
}
