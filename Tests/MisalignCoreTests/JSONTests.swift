import Testing
import Foundation
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

@Suite struct JSONTests {
    @Test func parsesNestedDocumentInOrder() throws {
        let v = try JSONValue.parse(#"{"b": [1, -2.5e3, true, null], "a": {"x": "\u00e9\ud83d\ude00"}}"#)
        #expect(v.objectValue?.keys == ["b", "a"])
        #expect(v["b"]?.arrayValue == [.int(1), .double(-2500), .bool(true), .null])
        #expect(v["a"]?["x"]?.stringValue == "é😀")
    }

    @Test func keepsLargeIntegersExact() throws {
        let v = try JSONValue.parse("[9007199254740993, -9223372036854775808, 18446744073709551616]")
        #expect(v.arrayValue?[0] == .int(9_007_199_254_740_993))
        #expect(v.arrayValue?[1] == .int(Int64.min))
        #expect(v.arrayValue?[2] == .double(18446744073709551616)) // beyond Int64: a double
    }

    @Test func escapesRoundTrip() throws {
        let s = "quote \" backslash \\ newline \n tab \t control \u{01} é 😀"
        let text = JSONValue.string(s).serialized()
        #expect(try JSONValue.parse(text).stringValue == s)
    }

    @Test(arguments: [
        ("{\"a\":1,\"a\":2}", "duplicate key"),
        ("{\"a\":1,}", "expected a string key"),
        ("[1,2", "end of input"),
        ("{\"a\" 1}", "expected ':'"),
        ("01", "unexpected text"),
        ("1.", "no digits after"),
        ("\"\\ud800\"", "surrogate"),
        ("\"a\u{01}\"", "control character"),
        ("tru", "invalid literal"),
        ("[1] x", "unexpected text"),
        ("", "end of input"),
        ("\"\\x\"", "invalid escape"),
    ])
    func rejectsMalformedText(text: String, message: String) {
        #expect {
            _ = try JSONValue.parse(text)
        } throws: { error in
            (error as? JSONParseError)?.message.contains(message) == true
        }
    }

    @Test func rejectsInvalidUTF8() {
        let bytes: [UInt8] = [0x22, 0xFF, 0xFE, 0x22]
        #expect(throws: JSONParseError.self) { _ = try JSONValue.parse(Data(bytes)) }
    }

    @Test func limitsDepth() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect { _ = try JSONValue.parse(deep, maxDepth: 512) } throws: { error in
            (error as? JSONParseError)?.message.contains("nesting deeper") == true
        }
    }

    @Test func reportsDuplicateKeyDepth() {
        do {
            _ = try JSONValue.parse(#"{"t": {"dtype": "F32", "dtype": "F16"}}"#)
            Issue.record("expected an error")
        } catch {
            #expect(error.duplicateKey == "dtype")
            #expect(error.depth == 2)
        }
    }
}
