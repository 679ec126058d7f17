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

@Suite struct TokenizerDecodeTests {
    /// Feeding ids one at a time reproduces the full decode and never shows a broken character.
    @Test func streamingDecodeEqualsFullDecode() throws {
        let tok = QwenFixture.tokenizer
        var checked = 0
        for file in ["cases.jsonl", "cases_extra.jsonl"] {
            for c in try QwenFixture.lines(file) {
                let ids = QwenFixture.ids(c["ids"])
                let full = try tok.decode(ids)
                var stream = tok.streamingDecoder()
                var out = ""
                for id in ids {
                    let piece = try stream.append(id)
                    // Every fixture text is valid UTF-8, so a U+FFFD here would be a split character.
                    if !full.unicodeScalars.contains("\u{FFFD}") {
                        #expect(!piece.unicodeScalars.contains("\u{FFFD}"), "\(c["name"]?.stringValue ?? "")")
                    }
                    out += piece
                }
                out += stream.finish()
                #expect(out == full)
                checked += 1
            }
        }
        #expect(checked > 600)
    }

    /// Random id sequences (partial and invalid UTF-8, special tokens) decode exactly as HF
    /// decodes them, U+FFFD placement included; streaming gives the same text.
    @Test func randomIDSequencesDecodeLikeHF() throws {
        let tok = QwenFixture.tokenizer
        let cases = try QwenFixture.lines("decode_cases.jsonl")
        #expect(cases.count == 300)
        var mismatches = 0
        for c in cases {
            let ids = QwenFixture.ids(c["ids"])
            if try tok.decode(ids) != c["text"]!.stringValue! { mismatches += 1 }
            if try tok.decode(ids, skipSpecialTokens: true) != c["text_skip_special"]!.stringValue! { mismatches += 1 }
            var stream = tok.streamingDecoder()
            var out = ""
            for id in ids { out += try stream.append(id) }
            out += stream.finish()
            if out != c["text"]!.stringValue! { mismatches += 1 }
        }
        #expect(mismatches == 0)
    }

    /// A multi-token character is held back until its last byte arrives.
    @Test func streamingHoldsIncompleteCharacter() throws {
        let tok = QwenFixture.tokenizer
        let ids = tok.encode("𓀀") // a rare four-byte character, split over several byte-level tokens
        #expect(ids.count > 1)
        var stream = tok.streamingDecoder()
        for id in ids.dropLast() { #expect(try stream.append(id) == "") }
        #expect(try stream.append(ids.last!) == "𓀀")
        #expect(stream.finish() == "")
    }

    /// An unfinished character at the end is flushed as U+FFFD, as a full decode renders it.
    @Test func streamingFinishFlushesLikeDecode() throws {
        let tok = QwenFixture.tokenizer
        let ids = Array(tok.encode("a𓀀").dropLast())
        var stream = tok.streamingDecoder()
        var out = ""
        for id in ids { out += try stream.append(id) }
        out += stream.finish()
        #expect(out == (try tok.decode(ids)))
    }

    @Test func skipSpecialTokens() throws {
        let tok = QwenFixture.tokenizer
        let ids = tok.encode("<|im_start|>user\nhi<|im_end|><tool_call>")
        #expect(try tok.decode(ids, skipSpecialTokens: true) == "user\nhi<tool_call>")
        #expect(try tok.decode(ids) == "<|im_start|>user\nhi<|im_end|><tool_call>")
    }

    @Test func vocabularyAndSpecialIDs() {
        let tok = QwenFixture.tokenizer
        #expect(tok.vocabularySize == 151665)
        #expect(tok.eosTokenID == 151645)
        #expect(tok.padTokenID == 151643)
        #expect(tok.specialTokenIDs["<|endoftext|>"] == 151643)
        #expect(tok.specialTokenIDs.count == 14)
        #expect(tok.tokenID(for: "Ġhello") == tok.encode(" hello").first)
    }
}
